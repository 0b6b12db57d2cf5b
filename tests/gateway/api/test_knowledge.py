"""The Files and Vector Stores APIs through the official SDK, against a real
gateway process with real Milvus Lite. Embeddings come from the fake
upstream's ``words`` model (a hashed bag of words: texts sharing words are
near), so these run in seconds; retrieval quality on the real MiniLM engine is
tests/gateway/knowledge/test_e2e_knowledge.py's."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.helpers import FakeUpstream, Gateway, wait_for

ALICE = "sk-alice-" + secrets.token_hex(8)
BOB = "sk-bob-" + secrets.token_hex(8)
CAROL = "sk-carol-" + secrets.token_hex(8)
MAX_FILE_BYTES = 200_000
MAX_BYTES_PER_CALLER = 500_000
KEYS = {"ALICE": ALICE, "BOB": BOB, "CAROL": CAROL}


def knowledge_config(upstream: FakeUpstream, data: Path) -> dict[str, Any]:
    return {
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {
            "embedder": {"targets": [{"provider": "alpha", "model": "words"}]},
            "chat": {"targets": [{"provider": "alpha", "model": "m1"}]},
        },
        "auth": {
            "keys": [
                {"name": "alice", "key": "${ALICE}"},
                {"name": "bob", "key": "${BOB}"},
                {"name": "carol", "key": "${CAROL}"},
            ]
        },
        "knowledge": {
            "embedding_model": "embedder",
            "milvus_uri": str(data / "milvus.db"),
            "files_dir": str(data / "files"),
            "max_file_bytes": MAX_FILE_BYTES,
            "max_bytes_per_caller": MAX_BYTES_PER_CALLER,
        },
    }


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    """An upstream of this module's own: its faults slow or fail embeddings."""
    server = FakeUpstream(tmp_path_factory.mktemp("embedder"), "embedder")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, embedder: FakeUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("knowledge")
    server = Gateway(tmp, knowledge_config(embedder, tmp / "data"), env=KEYS)
    yield server
    server.stop()


def client(gateway: Gateway, key: str = ALICE) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def upload(sdk: OpenAI, name: str, data: bytes | str, purpose: str = "assistants") -> Any:
    raw = data.encode() if isinstance(data, str) else data
    return sdk.files.create(file=(name, raw), purpose=purpose)  # type: ignore[arg-type]


def settled(sdk: OpenAI, store_id: str, timeout: float = 30) -> Any:
    """The store once no file is in progress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = sdk.vector_stores.retrieve(store_id)
        if store.file_counts.in_progress == 0:
            return store
        time.sleep(0.05)
    raise AssertionError(f"vector store {store_id} still in progress after {timeout}s")


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


# ---- files ---------------------------------------------------------------------------


def test_files_upload_list_retrieve_content_delete(gateway: Gateway) -> None:
    sdk = client(gateway)
    made = [upload(sdk, f"note-{n}.txt", f"note number {n}") for n in range(3)]
    first = made[0]
    assert first.id.startswith("file-") and first.object == "file"
    assert (first.filename, first.bytes, first.purpose) == ("note-0.txt", 13, "assistants")
    assert first.status == "processed" and first.created_at > 0
    assert sdk.files.retrieve(first.id) == first
    assert sdk.files.content(first.id).content == b"note number 0"
    # Newest first, pages of two walk the whole list.
    listed = [f.id for f in sdk.files.list(limit=2)]
    assert listed[:3] == [f.id for f in reversed(made)]
    page = sdk.files.list(limit=2, order="asc", after=made[0].id)
    assert [f.id for f in page.data][:2] == [made[1].id, made[2].id]
    assert [f.id for f in sdk.files.list(purpose="batch")] == []
    done = sdk.files.delete(first.id)
    assert done.deleted and done.id == first.id
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.files.retrieve(first.id)
    assert error_of(missing.value)["param"] == "file_id"
    assert first.id not in [f.id for f in sdk.files.list()]


def test_an_upload_over_the_limit_is_413(gateway: Gateway) -> None:
    sdk = client(gateway)
    with pytest.raises(openai.APIStatusError) as large:
        upload(sdk, "big.txt", b"x" * (MAX_FILE_BYTES + 1))
    assert large.value.status_code == 413
    error = error_of(large.value)
    assert (error["param"], error["code"]) == ("file", "file_too_large")
    # One far past it is refused from its Content-Length, before the body is read.
    response = httpx.post(
        gateway.base_url + "/files",
        headers={"Authorization": f"Bearer {ALICE}"},
        files={"file": ("huge.bin", b"y" * (MAX_FILE_BYTES + 100_000))},
        data={"purpose": "assistants"},
    )
    assert response.status_code == 413 and response.json()["error"]["param"] == "file"
    assert upload(sdk, "exact.txt", b"z" * MAX_FILE_BYTES).bytes == MAX_FILE_BYTES


def test_bad_uploads_name_the_field(gateway: Gateway) -> None:
    sdk = client(gateway)
    with pytest.raises(openai.BadRequestError) as bad:
        upload(sdk, "a.txt", "text", purpose="nonsense")
    assert error_of(bad.value)["param"] == "purpose"
    auth = {"Authorization": f"Bearer {ALICE}"}
    no_purpose = httpx.post(gateway.base_url + "/files", headers=auth, files={"file": ("a", b"1")})
    assert no_purpose.status_code == 400 and no_purpose.json()["error"]["param"] == "purpose"
    no_file = httpx.post(gateway.base_url + "/files", headers=auth, data={"purpose": "assistants"})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    as_json = httpx.post(gateway.base_url + "/files", headers=auth, json={"purpose": "assistants"})
    assert as_json.status_code == 400 and as_json.json()["error"]["param"] == "file"


def test_a_caller_past_its_bytes_gets_400_others_do_not(gateway: Gateway) -> None:
    carol = client(gateway, CAROL)
    chunk = b"c" * (MAX_FILE_BYTES - 10)
    upload(carol, "one.txt", chunk)
    upload(carol, "two.txt", chunk)
    with pytest.raises(openai.BadRequestError) as over:
        upload(carol, "three.txt", chunk)
    error = error_of(over.value)
    assert (error["param"], error["code"]) == ("file", "bytes_limit_exceeded")
    assert len(carol.files.list().data) == 2  # the refused upload left nothing
    upload(client(gateway, BOB), "bobs.txt", chunk)


# ---- vector stores ------------------------------------------------------------------


def test_ingestion_statuses_counts_and_a_failed_file(
    gateway: Gateway, embedder: FakeUpstream
) -> None:
    sdk = client(gateway)
    good = upload(sdk, "guide.md", "# Guide\n\nThe kettle boils water for tea.")
    image = upload(sdk, "photo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    empty = upload(sdk, "blank.txt", "   \n  ")
    embedder.faults({"delay": 1.5})  # the first embedding request takes a while
    store = sdk.vector_stores.create(name="docs", file_ids=[good.id, image.id, empty.id])
    assert store.id.startswith("vs_") and store.object == "vector_store"
    assert store.status == "in_progress" and store.file_counts.in_progress >= 1
    assert store.file_counts.total == 3
    listed = sdk.vector_stores.files.list(store.id, filter="in_progress")
    assert good.id in [f.id for f in listed]
    done = settled(sdk, store.id)
    assert done.status == "completed"
    counts = done.file_counts
    assert (counts.completed, counts.failed, counts.in_progress, counts.total) == (1, 2, 0, 3)
    assert done.usage_bytes > 0
    files = {f.id: f for f in sdk.vector_stores.files.list(store.id)}
    assert files[good.id].status == "completed" and files[good.id].last_error is None
    assert files[image.id].status == "failed"
    assert files[image.id].last_error.code == "unsupported_file"
    assert files[empty.id].last_error.code == "invalid_file"
    strategy = files[good.id].chunking_strategy
    assert strategy.type == "static" and strategy.static.max_chunk_size_tokens == 800
    failed = sdk.vector_stores.files.list(store.id, filter="failed")
    assert sorted(f.id for f in failed) == sorted([image.id, empty.id])


def test_an_embedding_model_that_refuses_fails_the_file(
    gateway: Gateway, embedder: FakeUpstream
) -> None:
    sdk = client(gateway)
    text = upload(sdk, "refused.txt", "some words to embed")
    store = sdk.vector_stores.create(name="refusing")
    embedder.faults({"status": 400, "message": "input too long for this model"})
    attached = sdk.vector_stores.files.create(vector_store_id=store.id, file_id=text.id)
    assert attached.status == "in_progress"
    settled(sdk, store.id)
    failed = sdk.vector_stores.files.retrieve(text.id, vector_store_id=store.id)
    assert failed.status == "failed" and failed.last_error.code == "server_error"
    assert "input too long" in failed.last_error.message
    # Added again, it is ingested anew.
    sdk.vector_stores.files.create(vector_store_id=store.id, file_id=text.id)
    assert settled(sdk, store.id).file_counts.completed == 1


def corpus(sdk: OpenAI) -> tuple[Any, dict[str, Any]]:
    """A store of four files with attributes."""
    files = {
        "tea": upload(sdk, "tea.md", "Green tea steeps at eighty degrees for two minutes."),
        "coffee": upload(sdk, "coffee.md", "Espresso needs finely ground coffee and pressure."),
        "bread": upload(sdk, "bread.html", "<html><body><p>Bread dough rises overnight.</p>"
                        "<script>ignored()</script></body></html>"),
        "data": upload(sdk, "facts.json", '{"tea": "oolong is partly oxidised"}'),
    }  # fmt: skip
    store = sdk.vector_stores.create(name="kitchen")
    batch = sdk.vector_stores.file_batches.create(
        store.id,
        files=[
            {"file_id": files["tea"].id, "attributes": {"topic": "drinks", "year": 2024}},
            {"file_id": files["coffee"].id, "attributes": {"topic": "drinks", "year": 2021}},
            {"file_id": files["bread"].id, "attributes": {"topic": "baking", "year": 2023}},
            {"file_id": files["data"].id, "attributes": {"topic": "drinks", "verified": True}},
        ],
    )
    assert batch.object == "vector_store.files_batch" and batch.file_counts.total == 4
    settled(sdk, store.id)
    finished = sdk.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
    in_batch = sdk.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    # A file that failed says why (its last_error), so a failure here can be read.
    states = [(f.id, f.status, f.last_error) for f in in_batch.data]
    assert finished.status == "completed" and finished.file_counts.completed == 4, states
    assert len(in_batch.data) == 4
    return store, files


def names(results: Any) -> list[str]:
    return [r.filename for r in results]


def test_search_ranks_filters_and_thresholds(gateway: Gateway) -> None:
    sdk = client(gateway)
    store, files = corpus(sdk)
    found = sdk.vector_stores.search(store.id, query="how long does green tea steep")
    assert names(found)[0] == "tea.md"
    top = found.data[0]
    assert top.file_id == files["tea"].id and top.attributes == {"topic": "drinks", "year": 2024}
    assert top.content[0].type == "text" and "eighty degrees" in top.content[0].text
    assert 0 < top.score <= 1.0001
    html = sdk.vector_stores.search(store.id, query="bread dough")
    assert names(html)[0] == "bread.html" and "ignored" not in html.data[0].content[0].text
    baking = {"type": "eq", "key": "topic", "value": "baking"}
    assert names(sdk.vector_stores.search(store.id, query="tea", filters=baking)) == ["bread.html"]
    recent = {
        "type": "and",
        "filters": [
            {"type": "eq", "key": "topic", "value": "drinks"},
            {"type": "gte", "key": "year", "value": 2022},
        ],
    }
    assert names(sdk.vector_stores.search(store.id, query="coffee", filters=recent)) == ["tea.md"]
    either = {
        "type": "or",
        "filters": [
            {"type": "in", "key": "year", "value": [2021, 2023]},
            {"type": "eq", "key": "verified", "value": True},
        ],
    }
    got = sdk.vector_stores.search(store.id, query="tea coffee bread", filters=either)
    assert sorted(names(got)) == ["bread.html", "coffee.md", "facts.json"]
    assert len(sdk.vector_stores.search(store.id, query="tea", max_num_results=2).data) == 2
    strict = sdk.vector_stores.search(
        store.id, query="green tea", ranking_options={"score_threshold": 0.99}, rewrite_query=True
    )
    assert strict.data == [] or all(r.score >= 0.99 for r in strict.data)
    assert sdk.vector_stores.search(store.id, query="green tea").search_query == ["green tea"]


def test_bad_search_and_store_bodies_name_the_field(gateway: Gateway) -> None:
    sdk = client(gateway)
    store = sdk.vector_stores.create(name="checks")
    cases = [
        ({"query": "x", "max_num_results": 0}, "max_num_results"),
        ({"query": "x", "filters": {"type": "eq", "key": "a"}}, "filters"),
        ({"query": "x", "filters": {"type": "in", "key": "a", "value": 1}}, "filters"),
        ({"query": "x", "filters": {"type": "and", "filters": []}}, "filters"),
        ({"query": "x", "filters": {"type": "near", "key": "a", "value": 1}}, "filters.type"),
        ({"max_num_results": 3}, "query"),
    ]
    auth = {"Authorization": f"Bearer {ALICE}"}
    for body, param in cases:
        response = httpx.post(f"{gateway.base_url}/vector_stores/{store.id}/search", headers=auth,
                              json=body)  # fmt: skip
        assert response.status_code == 400, body
        assert response.json()["error"]["param"] == param, body
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.vector_stores.create(
            chunking_strategy={
                "type": "static",
                "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150},
            }
        )
    assert error_of(bad.value)["param"] == "chunking_strategy.static"
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.vector_stores.create(file_ids=["file-nope"])
    assert error_of(missing.value)["param"] == "file_ids[0]"


def test_update_list_and_delete_stores(gateway: Gateway) -> None:
    sdk = client(gateway)
    made = [sdk.vector_stores.create(name=f"s{n}", metadata={"n": str(n)}) for n in range(3)]
    updated = sdk.vector_stores.update(
        made[0].id, name="renamed", expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert updated.name == "renamed" and updated.metadata == {"n": "0"}
    assert updated.expires_at == updated.last_active_at + 7 * 86_400
    listed = [s.id for s in sdk.vector_stores.list(limit=1)]
    assert listed[:3] == [s.id for s in reversed(made)]
    before = sdk.vector_stores.list(before=made[2].id, order="asc", limit=2)
    assert [s.id for s in before.data] == [made[0].id, made[1].id] and before.has_more
    done = sdk.vector_stores.delete(made[1].id)
    assert done.deleted and done.object == "vector_store.deleted"
    with pytest.raises(openai.NotFoundError):
        sdk.vector_stores.retrieve(made[1].id)


def test_deleting_files_removes_their_vectors(gateway: Gateway) -> None:
    sdk = client(gateway)
    store, files = corpus(sdk)
    assert names(sdk.vector_stores.search(store.id, query="espresso coffee"))[0] == "coffee.md"
    removed = sdk.vector_stores.files.delete(files["coffee"].id, vector_store_id=store.id)
    assert removed.deleted and removed.object == "vector_store.file.deleted"
    assert "coffee.md" not in names(sdk.vector_stores.search(store.id, query="espresso coffee"))
    assert sdk.files.retrieve(files["coffee"].id).id == files["coffee"].id  # still a file
    sdk.files.delete(files["tea"].id)  # deleting the file takes it out of the store
    assert "tea.md" not in names(sdk.vector_stores.search(store.id, query="green tea steeps"))
    assert sdk.vector_stores.retrieve(store.id).file_counts.total == 2
    with pytest.raises(openai.NotFoundError):
        sdk.vector_stores.files.retrieve(files["tea"].id, vector_store_id=store.id)


def test_attributes_update_and_file_content(gateway: Gateway) -> None:
    sdk = client(gateway)
    text = upload(sdk, "page.html", "<h1>Title</h1><p>Body text.</p>")
    store = sdk.vector_stores.create(name="attrs")
    sdk.vector_stores.files.create(vector_store_id=store.id, file_id=text.id)
    settled(sdk, store.id)
    changed = sdk.vector_stores.files.update(
        text.id, vector_store_id=store.id, attributes={"lang": "en"}
    )
    assert changed.attributes == {"lang": "en"}
    only_en = {"type": "eq", "key": "lang", "value": "en"}
    assert names(sdk.vector_stores.search(store.id, query="title", filters=only_en)) == [
        "page.html"
    ]
    content = list(sdk.vector_stores.files.content(text.id, vector_store_id=store.id))
    assert [c.text for c in content] == ["Title\nBody text."]


def test_another_caller_finds_nothing(gateway: Gateway) -> None:
    alice, bob = client(gateway), client(gateway, BOB)
    secret = upload(alice, "secret.txt", "the launch code is tea")
    store = alice.vector_stores.create(name="private", file_ids=[secret.id])
    settled(alice, store.id)
    for attempt in (
        lambda: bob.files.retrieve(secret.id),
        lambda: bob.files.content(secret.id),
        lambda: bob.files.delete(secret.id),
        lambda: bob.vector_stores.retrieve(store.id),
        lambda: bob.vector_stores.search(store.id, query="launch code"),
        lambda: bob.vector_stores.files.list(store.id),
        lambda: bob.vector_stores.delete(store.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert secret.id not in [f.id for f in bob.files.list()]
    assert store.id not in [s.id for s in bob.vector_stores.list()]
    bobs = bob.vector_stores.create(name="bobs")
    with pytest.raises(openai.NotFoundError) as foreign:
        bob.vector_stores.files.create(vector_store_id=bobs.id, file_id=secret.id)
    assert error_of(foreign.value)["param"] == "file_id"
    with pytest.raises(openai.NotFoundError) as search:
        bob.responses.create(
            model="chat",
            input="launch code?",
            tools=[{"type": "file_search", "vector_store_ids": [store.id]}],
        )
    assert error_of(search.value)["param"] == "tools[0].vector_store_ids[0]"
    assert names(alice.vector_stores.search(store.id, query="launch code")) == ["secret.txt"]


def embedded(embedder: FakeUpstream, text: str) -> int:
    """How many embedding requests the upstream received for this text."""
    bodies = [r["body"] for r in embedder.requests() if r["path"] == "/v1/embeddings"]
    return sum(text in body["input"] for body in bodies)


def test_a_restart_keeps_files_stores_and_vectors(tmp_path: Path, embedder: FakeUpstream) -> None:
    config = knowledge_config(embedder, tmp_path / "data")
    text = "Sourdough starter needs daily feeding."
    embedder.reset()
    first = Gateway(tmp_path, config, env=KEYS)
    try:
        # Added while the new gateway still opens Milvus (and looks for
        # ingestion a stop interrupted): ingested once, not resumed as well.
        sdk = client(first)
        kept = upload(sdk, "kept.md", text)
        store = sdk.vector_stores.create(name="kept", file_ids=[kept.id])
        settled(sdk, store.id)
        assert embedded(embedder, text) == 1
    finally:
        first.stop()
    second = Gateway(tmp_path, config, env=KEYS)
    try:
        sdk = client(second)
        assert sdk.files.retrieve(kept.id).filename == "kept.md"
        assert sdk.files.content(kept.id).content == b"Sourdough starter needs daily feeding."
        again = sdk.vector_stores.retrieve(store.id)
        assert again.name == "kept" and again.file_counts.completed == 1
        found = sdk.vector_stores.search(store.id, query="sourdough feeding")
        assert names(found) == ["kept.md"]
        assert embedded(embedder, text) == 1  # nothing was left to resume
    finally:
        second.stop()


def test_ingestion_a_stop_interrupted_resumes_at_the_next_start(
    tmp_path: Path, embedder: FakeUpstream
) -> None:
    config = knowledge_config(embedder, tmp_path / "data")
    text = "Rye bread keeps for a week."
    embedder.reset()
    embedder.faults({"delay": 10})  # the first embedding outlasts the gateway
    first = Gateway(tmp_path, config, env=KEYS)
    try:
        sdk = client(first)
        rye = upload(sdk, "rye.md", text)
        store = sdk.vector_stores.create(name="bakery", file_ids=[rye.id])
        wait_for(lambda: embedded(embedder, text), 10, "the first embedding request", every=0.05)
    finally:
        first.stop()
    second = Gateway(tmp_path, config, env=KEYS)
    try:
        sdk = client(second)
        assert settled(sdk, store.id).file_counts.completed == 1
        assert embedded(embedder, text) == 2  # the interrupted one, and the resumed one
        assert names(sdk.vector_stores.search(store.id, query="rye bread")) == ["rye.md"]
    finally:
        second.stop()


def test_without_a_knowledge_section_the_apis_are_404_and_file_search_400(
    gateway: Gateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    config = {
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "alpha", "model": "m1"}]}},
    }
    plain = Gateway(tmp_path, config)
    try:
        sdk = OpenAI(base_url=plain.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.NotFoundError) as missing:
            sdk.vector_stores.list()
        assert "knowledge" in error_of(missing.value)["message"]
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.responses.create(
                model="chat",
                input="hi",
                tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}],
            )
        assert error_of(refused.value)["param"] == "tools[0].type"
    finally:
        plain.stop()
