"""The OpenAI contract, driven the way users drive it: the official SDK and raw HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.helpers import FakeUpstream, Gateway

USER = [{"role": "user", "content": "hello there world"}]


@pytest.fixture
def client(gateway: Gateway) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)


def test_chat_non_streaming_returns_public_model_and_usage(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    upstream.reset()
    reply = client.chat.completions.create(model="chat", messages=USER)
    assert reply.model == "chat"
    assert reply.choices[0].message.content == "alpha: hello there world"
    assert reply.usage is not None and reply.usage.total_tokens == (
        reply.usage.prompt_tokens + reply.usage.completion_tokens
    )
    sent = upstream.requests()[-1]
    assert sent["body"]["model"] == "m1"  # the upstream name, not the public one
    assert sent["headers"]["authorization"] == "Bearer sk-alpha-secret-123"


def test_model_names_with_slashes_route(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reset()
    reply = client.chat.completions.create(model="org/chat-2", messages=USER)
    assert reply.model == "org/chat-2"
    assert upstream.requests()[-1]["body"]["model"] == "m2"
    assert client.models.retrieve("org/chat-2").id == "org/chat-2"


def test_every_documented_field_and_vendor_extras_pass_through(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    upstream.reset()
    fields = {
        "temperature": 0.3,
        "top_p": 0.9,
        "n": 2,
        "stop": ["x"],
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"42": -1},
        "logprobs": True,
        "top_logprobs": 2,
        "max_completion_tokens": 30,
        "user": "u1",
        "metadata": {"a": "b"},
        "parallel_tool_calls": False,
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "tool_choice": "auto",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": {"type": "object"}},
        },
    }
    extras = {
        "top_k": 5,
        "min_p": 0.1,
        "repetition_penalty": 1.1,
        "guided_json": {"type": "object"},
        "chat_template_kwargs": {"enable_thinking": False},
    }
    reply = client.chat.completions.create(model="chat", messages=USER, extra_body=extras, **fields)
    assert len(reply.choices) == 2
    sent = upstream.requests()[-1]["body"]
    for key, value in {**fields, **extras}.items():
        assert sent[key] == value, key


def test_image_parts_pass_through(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reset()
    content = [
        {"type": "text", "text": "describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
    ]
    client.chat.completions.create(model="chat", messages=[{"role": "user", "content": content}])
    assert upstream.requests()[-1]["body"]["messages"][0]["content"] == content


def test_chat_streaming_with_usage(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="chat", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "alpha: hello there world"
    assert all(c.model == "chat" for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_streaming_without_include_usage_sends_no_usage(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    upstream.reset()
    chunks = list(client.chat.completions.create(model="chat", messages=USER, stream=True))
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    # The gateway still asked the upstream for usage, for its own accounting.
    assert upstream.requests()[-1]["body"]["stream_options"] == {"include_usage": True}


def test_usage_counted_when_upstream_sends_none(client: OpenAI) -> None:
    reply = client.chat.completions.create(model="quiet", messages=USER)
    assert reply.usage is not None
    assert reply.usage.completion_tokens >= 4 and reply.usage.prompt_tokens > 3
    chunks = list(
        client.chat.completions.create(
            model="quiet", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert usage.completion_tokens >= 4
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_async_client_concurrent_requests(gateway: Gateway) -> None:
    async with AsyncOpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client:
        replies = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": f"n{i}"}]
                )
                for i in range(20)
            )
        )
        assert sorted(r.choices[0].message.content or "" for r in replies) == sorted(
            f"alpha: n{i}" for i in range(20)
        )
        stream = await client.chat.completions.create(model="chat", messages=USER, stream=True)
        pieces = [c.choices[0].delta.content or "" async for c in stream]
        assert "".join(pieces) == "alpha: hello there world"


def test_completions_prompt_forms(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reset()
    assert (
        client.completions.create(model="chat", prompt="say hi").choices[0].text == "alpha: say hi"
    )
    client.completions.create(model="chat", prompt=["a", "b"])
    client.completions.create(model="chat", prompt=[1, 2, 3])
    bodies = [r["body"]["prompt"] for r in upstream.requests()]
    assert bodies == ["say hi", ["a", "b"], [1, 2, 3]]
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(model="chat", prompt="go on", stream=True)
    )
    assert streamed == "alpha: go on"


def test_embeddings(client: OpenAI) -> None:
    result = client.embeddings.create(model="chat", input=["a", "b"])
    assert result.model == "chat"
    assert [d.index for d in result.data] == [0, 1]
    assert result.usage.prompt_tokens == 6


def test_models_listing_and_lookup(client: OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["chat", "org/chat-2", "flaky", "quiet", "down"]
    assert client.models.retrieve("chat").id == "chat"


def test_health_and_ready(gateway: Gateway) -> None:
    assert httpx.get(gateway.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(gateway.url + "/ready")
    # 'down' has no reachable target: the gateway still serves the others
    # (degraded, 200, so a load balancer keeps it) and says which is down.
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert httpx.get(gateway.url + "/ready?strict").status_code == 503
    models = ready.json()["models"]
    assert models["chat"]["ready"] is True
    assert models["down"] == {"ready": False, "targets": {"nowhere/m1": "down"}}


def test_request_id_is_accepted_and_returned(gateway: Gateway) -> None:
    body = {"model": "chat", "messages": USER}
    given = httpx.post(
        gateway.base_url + "/chat/completions", json=body, headers={"X-Request-ID": "req-abc"}
    )
    assert given.headers["x-request-id"] == "req-abc"
    made = httpx.post(gateway.base_url + "/chat/completions", json=body)
    again = httpx.post(gateway.base_url + "/chat/completions", json=body)
    ids = [made.headers["x-request-id"], again.headers["x-request-id"]]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids) and ids[0] != ids[1]
    assert made.headers["x-gateway-target"] == "alpha/m1"


def test_access_log_line_per_request_without_secrets(gateway: Gateway) -> None:
    httpx.post(
        gateway.base_url + "/chat/completions",
        json={"model": "chat", "messages": USER},
        headers={"X-Request-ID": "log-probe-1", "Authorization": "Bearer sk-client-secret-999"},
    )
    deadline = time.monotonic() + 5
    line = None
    while line is None and time.monotonic() < deadline:
        for raw in gateway.access_log.read_text().splitlines():  # type: ignore[attr-defined]
            if "log-probe-1" in raw:
                line = orjson.loads(raw)
        time.sleep(0.05)
    assert line is not None
    assert line["model"] == "chat" and line["target"] == "alpha/m1" and line["status"] == 200
    assert line["prompt_tokens"] > 0 and line["completion_tokens"] > 0 and line["latency_ms"] > 0
    everything = gateway.access_log.read_text() + gateway.log()  # type: ignore[attr-defined]
    assert "sk-client-secret-999" not in everything
    assert "sk-alpha-secret-123" not in everything
