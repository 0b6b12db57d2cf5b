"""End to end: knowledge bases on the real all-MiniLM-L6-v2 engine and a real
vLLM chat engine (the session's engine gateway), real Milvus Lite, through the
official SDK. The corpus is this repository's README split at its ``##``
sections, and a PDF made here: each question's right chunk must rank first,
and a file_search answer from the chat engine carries the citations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fpdf import FPDF
from openai import OpenAI

from tests.engine_gateway import EngineGateway
from tests.helpers import ROOT, Gateway

pytestmark = pytest.mark.e2e

WARRANTY = (
    "Zephyr 9 espresso machine: warranty terms. The Zephyr 9 is covered by a warranty "
    "of 36 months from the date of purchase. The warranty covers the pump, the boiler "
    "and the grinder. Descaling damage is not covered."
)
QUESTIONS = [
    # (question, the files its answer is in, words the top chunk must hold)
    ("How many months of warranty does the Zephyr 9 espresso machine have?",
     {"warranty.pdf"}, ["36 months"]),
    # Answered twice in the README: by the drain section and by the reference's
    # drain_seconds line.
    ("How long do in-flight requests get to finish after SIGTERM during a graceful drain?",
     {"operating-it.md", "models-yaml-reference.md"}, ["drain"]),
    ("How do I verify JWT tokens with a JWKS URL?", {"access-control-and-rate-limits.md"},
     ["jwt"]),
]  # fmt: skip


def readme_sections() -> dict[str, str]:
    """The README's ``##`` sections, one Markdown file each."""
    text = (ROOT / "README.md").read_text()
    sections = {}
    for block in re.split(r"\n(?=## )", text)[1:]:
        title = block.splitlines()[0].removeprefix("## ").strip()
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        sections[f"{slug}.md"] = block
    return sections


def warranty_pdf() -> bytes:
    document = FPDF()
    document.set_font("helvetica", size=12)
    document.add_page()
    document.multi_cell(0, 8, "Appliance handbook, chapter 4.")
    document.add_page()
    document.multi_cell(0, 8, WARRANTY)
    return bytes(document.output())


@pytest.fixture(scope="module")
def knowledge(
    tmp_path_factory: pytest.TempPathFactory, engines_gateway: EngineGateway
) -> Iterator[Gateway]:
    """A gateway whose embedding and chat models are the engine gateway's."""
    tmp = tmp_path_factory.mktemp("knowledge-e2e")
    engines = {"kind": "openai", "base_url": engines_gateway.base_url}
    config = {
        "providers": {"engines": engines},
        "models": {
            # A remote embedding model's window is told here (the engine's is 256).
            "minilm": {
                "targets": [{"provider": "engines", "model": "minilm"}],
                "max_model_len": 256,
            },
            "chat": {"targets": [{"provider": "engines", "model": "tiny-qwen2"}]},
        },
        "knowledge": {
            "embedding_model": "minilm",
            "milvus_uri": str(tmp / "milvus.db"),
            "files_dir": str(tmp / "files"),
        },
    }
    gateway = Gateway(tmp, config)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def store(knowledge: Gateway) -> tuple[str, dict[str, Any]]:
    """The corpus, ingested: README sections in one batch, the PDF alone."""
    sdk = OpenAI(base_url=knowledge.base_url, api_key="x", max_retries=0)
    created = sdk.vector_stores.create(name="handbook")
    uploaded = {
        name: sdk.files.create(file=(name, text.encode()), purpose="assistants")
        for name, text in readme_sections().items()
    }
    batch = sdk.vector_stores.file_batches.create_and_poll(
        created.id, file_ids=[f.id for f in uploaded.values()], poll_interval_ms=200
    )
    assert batch.status == "completed"
    assert batch.file_counts.completed == len(uploaded) and batch.file_counts.failed == 0
    pdf = sdk.vector_stores.files.upload_and_poll(
        vector_store_id=created.id, file=("warranty.pdf", warranty_pdf()), poll_interval_ms=200
    )
    assert pdf.status == "completed" and pdf.usage_bytes > 0
    uploaded["warranty.pdf"] = sdk.files.retrieve(pdf.id)
    return created.id, uploaded


def client(gateway: Gateway) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0)


@pytest.mark.parametrize(("question", "filenames", "words"), QUESTIONS)
def test_the_right_chunk_ranks_first(
    knowledge: Gateway, store: tuple[str, dict[str, Any]], question: str, filenames: set[str],
    words: list[str],
) -> None:  # fmt: skip
    store_id, files = store
    found = client(knowledge).vector_stores.search(store_id, query=question, max_num_results=5)
    top = found.data[0]
    assert top.filename in filenames, [(r.filename, round(r.score, 3)) for r in found.data]
    assert top.file_id == files[top.filename].id
    assert all(word in top.content[0].text for word in words)
    assert top.score > found.data[-1].score


def test_a_filter_keeps_only_matching_files(
    knowledge: Gateway, store: tuple[str, dict[str, Any]]
) -> None:
    store_id, files = store
    sdk = client(knowledge)
    sdk.vector_stores.files.update(
        files["warranty.pdf"].id, vector_store_id=store_id, attributes={"kind": "pdf"}
    )
    only_docs = {"type": "ne", "key": "kind", "value": "pdf"}
    found = sdk.vector_stores.search(store_id, query=QUESTIONS[0][0], filters=only_docs)
    assert found.data and "warranty.pdf" not in [r.filename for r in found.data]


def test_file_search_answers_with_citations_from_a_real_engine(
    knowledge: Gateway, store: tuple[str, dict[str, Any]]
) -> None:
    store_id, files = store
    sdk = client(knowledge)
    tool = {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 3}
    question = QUESTIONS[0][0]
    plain = sdk.responses.create(model="chat", input=question, max_output_tokens=16)
    answer = sdk.responses.create(
        model="chat",
        input=question,
        tools=[tool],  # type: ignore[list-item]
        include=["file_search_call.results"],
        max_output_tokens=16,
    )
    call, message = answer.output[0], answer.output[-1]
    assert call.type == "file_search_call" and call.status == "completed"
    assert call.queries == [question]
    assert call.results is not None and len(call.results) == 3
    assert call.results[0].filename == "warranty.pdf" and "36 months" in call.results[0].text
    assert message.type == "message"
    text = message.content[0]
    assert text.type == "output_text" and text.annotations
    cited = {a.file_id for a in text.annotations}
    assert cited <= {r.file_id for r in call.results}
    assert files["warranty.pdf"].id in cited
    assert all(
        a.type == "file_citation" and 0 <= a.index <= len(text.text) for a in text.annotations
    )
    # The chunks were in the model's context: the prompt grew by them.
    assert answer.usage.input_tokens > plain.usage.input_tokens + 50
    # Without include, the call says what it searched but not what it found.
    quiet = sdk.responses.create(model="chat", input=question, tools=[tool], max_output_tokens=4)  # type: ignore[list-item]
    assert quiet.output[0].type == "file_search_call" and quiet.output[0].results is None


def test_file_search_streams_its_events(
    knowledge: Gateway, store: tuple[str, dict[str, Any]]
) -> None:
    store_id, _ = store
    tool = {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 2}
    with client(knowledge).responses.stream(
        model="chat",
        input=QUESTIONS[1][0],
        tools=[tool],
        max_output_tokens=16,  # type: ignore[list-item]
    ) as stream:
        events = list(stream)
    # 16 tokens may cut the answer short: then the stream ends with
    # response.incomplete (the SDK's get_final_response wants response.completed).
    assert events[-1].type in ("response.completed", "response.incomplete")
    final = events[-1].response
    kinds = [e.type for e in events]
    searched = [
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
    ]
    assert [k for k in kinds if k.startswith("response.file_search_call")] == searched
    assert kinds.index(searched[-1]) < kinds.index("response.output_text.delta")
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert added and [e.annotation_index for e in added] == list(range(len(added)))
    text = final.output[-1].content[0]
    assert [a.model_dump() for a in text.annotations] == [e.annotation.model_dump() for e in added]
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == text.text
    assert final.output[0].type == "file_search_call"
    assert [i.type for i in final.output] == ["file_search_call", "message"]
