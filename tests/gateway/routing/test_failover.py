"""Mid-stream failover against real upstreams on loopback: a stream whose
backend drops after a few chunks finishes on another backend, spliced into
the same SSE response; what cannot be continued still ends with the error
event. The two upstreams share a name, so each would give the same answer:
the client must receive it exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from openai import OpenAI

from tests.gateway.observability.scrape import scrape
from tests.helpers import FakeUpstream, Gateway

QUESTION = "one two three four five six"
ANSWER = f"twin: {QUESTION}"


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FakeUpstream]]:
    tmp = tmp_path_factory.mktemp("twins")
    servers = {name: FakeUpstream(tmp, "twin") for name in ("first", "second", "plain")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def up(twins: dict[str, FakeUpstream]) -> dict[str, FakeUpstream]:
    for server in twins.values():
        server.reset()
    return twins


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, twins: dict[str, FakeUpstream]
) -> Iterator[Gateway]:
    def provider(name: str, continuation: bool) -> dict[str, Any]:
        return {"kind": "openai", "base_url": twins[name].base_url, "continuation": continuation}

    def targets(*names: str) -> list[dict[str, Any]]:
        return [{"provider": n, "model": "m", "tier": i + 1} for i, n in enumerate(names)]

    tmp = tmp_path_factory.mktemp("failover")
    config = {
        "server": {"access_log": str(tmp / "access.log")},
        "routing": {"health_check_interval": 0, "breaker": {"failures": 1000}},
        "providers": {
            "first": provider("first", True),
            "second": provider("second", True),
            "plain": provider("plain", False),
        },
        "models": {
            "pair": {"targets": targets("first", "second")},
            "no-continuation": {"targets": targets("first", "plain")},
            "plain-first": {"targets": targets("plain", "first")},
            "switched-off": {"targets": targets("first", "second"), "stream_failover": False},
        },
    }
    server = Gateway(tmp, config)
    server.access_log = tmp / "access.log"  # type: ignore[attr-defined]
    yield server
    server.stop()


def stream(gateway: Gateway, model: str, **extra: Any) -> list[dict[str, Any]]:
    client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    chunks = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
        **extra,
    )
    return [chunk.model_dump() for chunk in chunks]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])


def test_a_dropped_stream_finishes_on_the_other_backend(
    gateway: Gateway, up: dict[str, FakeUpstream]
) -> None:
    up["first"].faults({"drop_after": 3})
    chunks = stream(gateway, "pair")
    assert text_of(chunks) == ANSWER  # nothing missing, nothing twice
    assert {c["id"] for c in chunks} == {"chatcmpl-fake"}
    assert [c["choices"][0]["delta"].get("role") for c in chunks if c["choices"]].count(
        "assistant"
    ) == 1
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] == "stop"
    failover = chunks[-1]["gateway_failover"]
    assert failover["from"] == "first/m" and failover["to"] == "second/m"
    assert failover["after_tokens"] == 3
    # The second backend was asked to continue exactly what the client had.
    (request,) = up["second"].requests()
    continued = request["body"]
    assert continued["messages"][-1] == {"role": "assistant", "content": "twin: one two"}
    assert continued["continue_final_message"] is True
    assert continued["add_generation_prompt"] is False
    # Usage: what each backend generated, together (7 words, one token each here).
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 7
    assert usage["total_tokens"] == usage["prompt_tokens"] + 7


def test_the_failover_is_counted_and_logged(gateway: Gateway, up: dict[str, FakeUpstream]) -> None:
    before = scrape(gateway.url).series(
        "vllm_gateway_stream_failovers_total", model="pair", **{"from": "first/m"}
    )
    up["first"].faults({"drop_after": 2})
    assert text_of(stream(gateway, "pair")) == ANSWER
    after = scrape(gateway.url).series(
        "vllm_gateway_stream_failovers_total", model="pair", **{"from": "first/m"}
    )
    assert sum(after.values()) == sum(before.values()) + 1
    log = gateway.access_log.read_bytes()  # type: ignore[attr-defined]
    chats = [e for e in map(orjson.loads, log.splitlines()) if e["path"].endswith("completions")]
    assert chats[-1]["failover"] == "first/m -> second/m" and chats[-1]["status"] == 200


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("no-continuation", {}),  # the other backend cannot continue an answer
        ("switched-off", {}),  # the model turned failover off
        ("pair", {"n": 2}),  # several choices
        ("pair", {"logprobs": True}),  # log probabilities cannot be spliced
    ],
)
def test_what_cannot_be_continued_ends_with_the_error_event(
    gateway: Gateway, up: dict[str, FakeUpstream], model: str, extra: dict[str, Any]
) -> None:
    up["first"].faults({"drop_after": 3})
    client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    with pytest.raises(Exception) as raised:  # the SDK raises on the stream's error event
        for _ in client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            **extra,
        ):
            pass
    assert "closed the connection" in str(raised.value)
    assert up["second"].requests() == [] and up["plain"].requests() == []


def test_a_break_before_the_first_chunk_is_an_ordinary_retry(
    gateway: Gateway, up: dict[str, FakeUpstream]
) -> None:
    up["first"].faults({"drop_after": 0})
    chunks = stream(gateway, "pair")
    assert text_of(chunks) == ANSWER
    assert "gateway_failover" not in chunks[-1]
    assert "continue_final_message" not in up["second"].requests()[0]["body"]


@pytest.mark.parametrize("model", ["pair", "no-continuation"])
def test_a_break_after_the_role_chunk_is_answered_afresh(
    gateway: Gateway, up: dict[str, FakeUpstream], model: str
) -> None:
    # vLLM opens a stream with a role-only chunk: an engine dying right after it
    # has sent the client no text, so any backend can give the whole answer.
    up["first"].faults({"role_chunk": True, "drop_after": 0})
    chunks = stream(gateway, model)
    assert text_of(chunks) == ANSWER
    roles = [c["choices"][0]["delta"].get("role") for c in chunks if c["choices"]]
    assert roles.count("assistant") == 1
    failover = chunks[-1]["gateway_failover"]
    assert failover["from"] == "first/m" and failover["after_tokens"] == 0
    other = up["second"] if model == "pair" else up["plain"]
    (request,) = other.requests()
    assert request["body"]["messages"] == [{"role": "user", "content": QUESTION}]
    assert "continue_final_message" not in request["body"]


def test_a_responses_api_stream_fails_over_the_same_way(
    gateway: Gateway, up: dict[str, FakeUpstream]
) -> None:
    up["first"].faults({"drop_after": 3})
    client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    deltas, final = [], None
    for event in client.responses.create(model="pair", input=QUESTION, stream=True):
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    assert "".join(deltas) == ANSWER
    assert final is not None and final.output_text == ANSWER
    (request,) = up["second"].requests()
    assert request["body"]["messages"][-1] == {"role": "assistant", "content": "twin: one two"}


def _prompt_tokens(body: dict[str, Any]) -> int:
    """The fake upstream's count of a request's prompt."""
    return len(orjson.dumps(body["messages"])) // 4


def test_tokens_are_counted_by_the_backend_when_chunks_hold_several(
    gateway: Gateway, up: dict[str, FakeUpstream]
) -> None:
    # vLLM packs several tokens into one chunk when its client reads behind the
    # engine: counting chunks would undercount, so the gateway asks for usage
    # on every chunk and keeps it from a client that did not ask for it.
    up["first"].faults({"drop_after": 2, "words_per_piece": 2})
    chunks = stream(gateway, "pair", max_tokens=50)
    assert text_of(chunks) == ANSWER
    assert [c for c in chunks[:-1] if c.get("usage")] == []
    (first,) = up["first"].requests()
    assert first["body"]["stream_options"]["continuous_usage_stats"] is True
    (second,) = up["second"].requests()
    assert second["body"]["messages"][-1]["content"] == "twin: one two three"
    assert second["body"]["max_tokens"] == 46  # 4 of the 50 were generated
    failover = chunks[-1]["gateway_failover"]
    assert failover["after_tokens"] == 4
    assert failover["prompt_tokens"] == _prompt_tokens(second["body"])
    # The client's prompt as the first backend counted it; every generated token once.
    assert chunks[-1]["usage"] == {
        "prompt_tokens": _prompt_tokens(first["body"]),
        "completion_tokens": 7,
        "total_tokens": _prompt_tokens(first["body"]) + 7,
        "completion_tokens_details": None,
        "prompt_tokens_details": None,
    }


def test_usage_on_every_chunk_is_joined_across_the_splice(
    gateway: Gateway, up: dict[str, FakeUpstream]
) -> None:
    up["first"].faults({"drop_after": 3})
    options = {"include_usage": True, "continuous_usage_stats": True}
    chunks = stream(gateway, "pair", extra_body={"stream_options": options})
    assert text_of(chunks) == ANSWER
    counts = [c["usage"]["completion_tokens"] for c in chunks if c["choices"]]
    # One word a chunk here: the count goes up by one a chunk on both sides of
    # the splice; the finish chunk repeats it.
    assert counts == [1, 2, 3, 4, 5, 6, 7, 7]
    assert chunks[-1]["usage"]["completion_tokens"] == 7
    assert "gateway_failover" not in chunks[3]  # only the final chunks carry it


def test_a_text_completion_stream_fails_over_the_same_way(
    gateway: Gateway, up: dict[str, FakeUpstream]
) -> None:
    up["first"].faults({"drop_after": 3})
    client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    pieces = [
        chunk.choices[0].text
        for chunk in client.completions.create(model="pair", prompt=QUESTION, stream=True)
        if chunk.choices
    ]
    assert "".join(pieces) == ANSWER  # nothing missing, nothing twice
    (request,) = up["second"].requests()
    assert request["body"]["prompt"] == QUESTION + "twin: one two"


def test_usage_a_backend_sends_with_its_finish_chunk_is_kept(
    gateway: Gateway, up: dict[str, FakeUpstream]
) -> None:
    # Only the usage the gateway asked for on every chunk is kept from the client.
    up["plain"].faults({"usage_with_finish": True})
    chunks = stream(gateway, "plain-first")
    assert text_of(chunks) == "twin: " + QUESTION
    (request,) = up["plain"].requests()
    assert "continuous_usage_stats" not in request["body"]["stream_options"]
    (finish,) = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish["usage"]["prompt_tokens"] == _prompt_tokens(request["body"])
    assert finish["usage"]["completion_tokens"] == 7
