"""POST /v1/responses and the stored responses, with the official SDK against
a real gateway process in front of the fake OpenAI-compatible upstream."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import openai
import orjson
import pytest
from openai import OpenAI

from tests.gateway.observability.scrape import scrape
from tests.gateway.responses.grammar import check_events, event_types
from tests.helpers import FakeUpstream, Gateway

ALICE = "sk-alice-" + secrets.token_hex(8)
BOB = "sk-bob-" + secrets.token_hex(8)
TIGHT = "sk-tight-" + secrets.token_hex(8)
JWT_SECRET = secrets.token_hex(32)
WEATHER = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream, faulty: FakeUpstream
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("responses")
    target = {"targets": [{"provider": "alpha", "model": "m1"}]}
    config = {
        "server": {"access_log": str(tmp / "access.log")},
        "audit": {"path": str(tmp / "audit.jsonl")},
        "providers": {
            "alpha": {"kind": "openai", "base_url": upstream.base_url},
            "faulty": {"kind": "openai", "base_url": faulty.base_url},
        },
        "models": {
            "chat": target,
            "small": {**target, "max_model_len": 300},
            "flaky": {
                "targets": [{"provider": "faulty", "model": "m1"}],
                "retries": {"attempts": 1},
            },
            "retrying": {
                "targets": [{"provider": "faulty", "model": "m1"}],
                "retries": {"attempts": 2, "backoff_base": 0.01},
            },
        },
        "routing": {"breaker": {"failures": 1000, "error_ratio": None}},
        "auth": {
            "keys": [
                {"name": "alice", "key": "${ALICE}"},
                {"name": "bob", "key": "${BOB}"},
                {"name": "tight", "key": "${TIGHT}", "tpm": 150, "models": ["chat"]},
            ],
            "jwt": {"algorithm": "HS256", "secret": "${JWT_SECRET}"},
        },
    }
    env = {"ALICE": ALICE, "BOB": BOB, "TIGHT": TIGHT, "JWT_SECRET": JWT_SECRET}
    server = Gateway(tmp, config, env=env)
    server.access_log = tmp / "access.log"  # type: ignore[attr-defined]
    server.audit_log = tmp / "audit.jsonl"  # type: ignore[attr-defined]
    yield server
    server.stop()


def client(gateway: Gateway, key: str = ALICE) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def last_request(upstream: FakeUpstream) -> dict[str, Any]:
    return dict(upstream.requests()[-1]["body"])


def test_create_retrieve_and_headers(gateway: Gateway, upstream: FakeUpstream) -> None:
    raw = client(gateway).responses.with_raw_response.create(
        model="chat", input="hello there", instructions="Be brief.", metadata={"k": "v"}
    )
    response = raw.parse()
    assert raw.headers["X-Gateway-Target"] == "alpha/m1" and raw.headers["X-Request-ID"]
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.model == "chat"
    assert response.output_text == "alpha: hello there"
    assert response.instructions == "Be brief." and response.metadata == {"k": "v"}
    assert response.usage is not None and response.usage.total_tokens > 0
    assert last_request(upstream)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    again = client(gateway).responses.retrieve(response.id)
    assert again.model_dump() == response.model_dump()


def test_five_turns_by_previous_response_id(gateway: Gateway, upstream: FakeUpstream) -> None:
    sdk = client(gateway)
    previous = None
    for turn in range(5):
        response = sdk.responses.create(
            model="chat", input=f"turn {turn}", previous_response_id=previous
        )
        assert response.previous_response_id == previous
        previous = response.id
    messages = last_request(upstream)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4 + ["user"]
    assert messages[2] == {"role": "user", "content": "turn 1"}
    assert messages[3] == {"role": "assistant", "content": "alpha: turn 1"}
    # input_items: the whole chain before the last output, newest first by default.
    assert previous is not None
    items = list(sdk.responses.input_items.list(previous, limit=2))
    assert len(items) == 9
    assert items[0].content[0].text == "turn 4"  # type: ignore[union-attr]
    ascending = [i.id for i in sdk.responses.input_items.list(previous, order="asc")]
    assert ascending == [i.id for i in reversed(items)]


def test_instructions_are_not_carried_over(gateway: Gateway, upstream: FakeUpstream) -> None:
    sdk = client(gateway)
    first = sdk.responses.create(model="chat", input="a", instructions="Speak French.")
    sdk.responses.create(model="chat", input="b", previous_response_id=first.id)
    assert [m["role"] for m in last_request(upstream)["messages"]] == ["user", "assistant", "user"]


def test_store_false_is_not_kept(gateway: Gateway) -> None:
    sdk = client(gateway)
    response = sdk.responses.create(model="chat", input="forget me", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.responses.create(model="chat", input="x", previous_response_id=response.id)
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"


def test_delete(gateway: Gateway) -> None:
    sdk = client(gateway)
    response = sdk.responses.create(model="chat", input="delete me")
    sdk.responses.delete(response.id)
    for call in (sdk.responses.retrieve, sdk.responses.delete, sdk.responses.input_items.list):
        with pytest.raises(openai.NotFoundError):
            call(response.id)


def test_another_caller_gets_404(gateway: Gateway) -> None:
    mine = client(gateway).responses.create(model="chat", input="private")
    theirs = client(gateway, BOB)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.input_items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.create(model="chat", input="x", previous_response_id=mine.id)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.delete(mine.id)
    assert client(gateway).responses.retrieve(mine.id).id == mine.id


def no_retention_token() -> str:
    claims = {"sub": "zdr", "exp": int(time.time()) + 300, "data_retention": "none"}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def test_no_retention_caller_cannot_store(gateway: Gateway) -> None:
    sdk = client(gateway, no_retention_token())
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model="chat", input="secret")
    assert caught.value.param == "store"
    assert sdk.responses.create(model="chat", input="fine", store=False).output_text
    with pytest.raises(openai.BadRequestError):
        sdk.conversations.create()


def test_function_tool_loop(gateway: Gateway, upstream: FakeUpstream) -> None:
    sdk = client(gateway)
    called = sdk.responses.create(
        model="chat",
        input="Paris",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "weather"},
    )
    [call] = called.output
    assert call.type == "function_call" and call.name == "weather"
    assert orjson.loads(call.arguments) == {"echo": "Paris"}
    sent = last_request(upstream)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert sent["tools"][0]["function"]["name"] == "weather"
    answered = sdk.responses.create(
        model="chat",
        previous_response_id=called.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert answered.output_text == "alpha: tool said sunny"
    messages = last_request(upstream)["messages"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}


def test_structured_output_and_reasoning_effort_reach_the_backend(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    client(gateway).responses.create(
        model="chat",
        input="json please",
        text={"format": {"type": "json_schema", "name": "thing", "schema": schema}},
        reasoning={"effort": "low"},
        max_output_tokens=32,
        extra_body={"top_k": 5},
    )
    sent = last_request(upstream)
    assert sent["response_format"]["json_schema"]["schema"] == schema
    assert sent["reasoning_effort"] == "low" and sent["max_completion_tokens"] == 32
    assert sent["top_k"] == 5


def test_reasoning_content_becomes_a_reasoning_item(gateway: Gateway) -> None:
    response = client(gateway).responses.create(model="chat", input="[think] why")
    reasoning, message = response.output
    assert reasoning.type == "reasoning"
    assert reasoning.content[0].text == "thinking about it"  # type: ignore[union-attr, index]
    assert message.type == "message"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"prompt": {"id": "pmpt_abc"}}, "prompt"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"temperature": 3}, "temperature"),
        ({"truncation": "sometimes"}, "truncation"),
    ],
)
def test_unsupported_or_invalid_fields_are_400_naming_them(
    gateway: Gateway, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "chat", "input": "hi", **extra}
    answer = httpx.post(
        gateway.base_url + "/responses", json=body, headers={"Authorization": f"Bearer {ALICE}"}
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_truncation_disabled_refuses_and_auto_drops(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    sdk = client(gateway)
    long = " ".join(["word"] * 90)
    previous = None
    for turn in range(2):
        previous = sdk.responses.create(
            model="chat", input=f"{turn} {long}", previous_response_id=previous
        ).id
    upstream.reset()
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model="small", input="now?", previous_response_id=previous)
    assert caught.value.code == "context_length_exceeded" and caught.value.param == "input"
    assert upstream.requests() == [], "refused before the backend was called"
    answer = sdk.responses.create(
        model="small", input="now?", previous_response_id=previous, truncation="auto"
    )
    assert answer.output_text == "alpha: now?" and answer.truncation == "auto"
    sent = last_request(upstream)["messages"]
    assert 1 <= len(sent) < 5 and sent[-1] == {"role": "user", "content": "now?"}


def test_model_access_applies(gateway: Gateway) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client(gateway, TIGHT).responses.create(model="small", input="not mine")
    assert caught.value.code == "model_not_allowed" and caught.value.param == "model"


def test_rate_limits_count_the_whole_rebuilt_conversation(gateway: Gateway) -> None:
    sdk = client(gateway, TIGHT)
    first = sdk.responses.create(model="chat", input=" ".join(["many"] * 60))
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.responses.create(model="chat", input="ok?", previous_response_id=first.id)
    assert "too large" in caught.value.message.lower() or "limit" in caught.value.message.lower()


def raw_events(gateway: Gateway, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE of a streamed create, checked frame by frame: ``event:`` names ``data``'s type."""
    events = []
    with httpx.stream(
        "POST",
        gateway.base_url + "/responses",
        json={**body, "stream": True},
        headers={"Authorization": f"Bearer {ALICE}"},
        timeout=30,
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/event-stream"
        for frame in answer.read().decode().split("\n\n"):
            if not frame:
                continue
            name, data = frame.split("\n")
            event = orjson.loads(data.removeprefix("data: "))
            assert name == f"event: {event['type']}"
            events.append(event)
    return events


def test_stream_follows_the_event_grammar(gateway: Gateway) -> None:
    events = raw_events(gateway, {"model": "chat", "input": "[think] one two three"})
    response = check_events(events)
    assert "response.reasoning_text.delta" in event_types(events)
    assert [item["type"] for item in response["output"]] == ["reasoning", "message"]
    text = response["output"][1]["content"][0]["text"]
    assert text == "alpha: [think] one two three"
    stored = client(gateway).responses.retrieve(response["id"])
    assert stored.output_text == text


def test_stream_of_a_tool_call_with_the_sdk(gateway: Gateway) -> None:
    with client(gateway).responses.stream(
        model="chat",
        input="Rome",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
    ) as stream:
        events = [event.model_dump(exclude_unset=True) for event in stream]
        final = stream.get_final_response()
    for item in events[-1]["response"]["output"]:
        item.pop("parsed_arguments")  # the SDK's own addition to the final snapshot
    check_events(events)
    assert "response.function_call_arguments.delta" in event_types(events)
    [call] = final.output
    assert call.type == "function_call" and orjson.loads(call.arguments) == {"echo": "Rome"}


def test_backend_failure_before_and_during_a_stream(gateway: Gateway, faulty: FakeUpstream) -> None:
    faulty.reset()
    faulty.faults({"status": 500})
    with pytest.raises(openai.InternalServerError):
        client(gateway).responses.create(model="flaky", input="x", stream=True)
    faulty.faults({"drop_mid_stream": True})
    events = raw_events(gateway, {"model": "flaky", "input": "one two three four five six"})
    failed = check_events(events)
    assert event_types(events)[-2:] == ["error", "response.failed"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    faulty.faults({"drop_mid_stream": True})
    sdk = client(gateway)
    with pytest.raises(openai.APIError), sdk.responses.stream(model="flaky", input="1 2 3 4") as s:
        for _ in s:
            pass
    faulty.reset()


def test_metrics_count_responses_by_endpoint(gateway: Gateway) -> None:
    client(gateway).responses.create(model="chat", input="count me")
    series = scrape(gateway.url).series(
        "vllm_gateway_requests_total", model="chat", endpoint="/v1/responses", status="200"
    )
    assert sum(series.values()) >= 1
    assert all(dict(labels)["target"] == "alpha/m1" for labels in series)


def test_access_log_lines(gateway: Gateway) -> None:
    client(gateway).responses.create(model="chat", input="logged")
    path: Path = gateway.access_log  # type: ignore[attr-defined]
    lines = [orjson.loads(line) for line in path.read_text().splitlines() if line]
    line = [entry for entry in lines if entry["path"] == "/v1/responses"][-1]
    assert line["method"] == "POST" and line["model"] == "chat" and line["key_name"] == "alice"
    assert ALICE not in path.read_text()


def test_a_stream_is_retried_before_its_first_event_and_never_after(
    gateway: Gateway, faulty: FakeUpstream
) -> None:
    faulty.reset()
    faulty.faults({"status": 500})
    events = raw_events(gateway, {"model": "retrying", "input": "second try"})
    assert check_events(events)["output"][0]["content"][0]["text"] == "faulty: second try"
    assert len(faulty.requests()) == 2
    faulty.reset()
    faulty.faults({"drop_mid_stream": True})
    events = raw_events(gateway, {"model": "retrying", "input": "one two three four five"})
    assert event_types(events)[-2:] == ["error", "response.failed"]
    assert len(faulty.requests()) == 1, "a stream that started is never sent again"
    faulty.reset()


def test_audit_log_has_the_input_and_the_answer(gateway: Gateway) -> None:
    raw = client(gateway).responses.with_raw_response.create(model="chat", input="audit me")
    request_id = raw.headers["X-Request-ID"]
    path: Path = gateway.audit_log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not entries:
        lines = path.read_text().splitlines() if path.exists() else []
        entries = [e for e in map(orjson.loads, lines) if e["request_id"] == request_id]
        time.sleep(0.05)
    [entry] = entries
    assert entry["path"] == "/v1/responses" and entry["prompt"] == "audit me"
    assert entry["completion"] == ["alpha: audit me"]
