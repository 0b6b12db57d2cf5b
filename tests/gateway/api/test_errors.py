"""Every error row of the contract: OpenAI's shape, the right status, never a traceback."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.helpers import FakeUpstream, Gateway

USER = [{"role": "user", "content": "hello there world"}]


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text
    return dict(body["error"])


def post(
    gateway: Gateway, body: Any, path: str = "/chat/completions", **kwargs: Any
) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.post(gateway.base_url + path, content=body, timeout=10, **kwargs)
    return httpx.post(gateway.base_url + path, json=body, timeout=10, **kwargs)


def test_malformed_json_is_400(gateway: Gateway) -> None:
    error = assert_openai_error(post(gateway, b'{"model": "chat",'), 400)
    assert error["type"] == "invalid_request_error"
    assert "JSON" in error["message"]


def test_non_object_body_is_400(gateway: Gateway) -> None:
    assert_openai_error(post(gateway, b"[1, 2]"), 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": USER}, "model"),
        ({"model": "chat"}, "messages"),
        ({"model": "chat", "messages": []}, "messages"),
        ({"model": "chat", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "chat", "messages": USER, "temperature": 9}, "temperature"),
        ({"model": "chat", "messages": USER, "stream": "yes"}, "stream"),
        ({"model": "chat", "messages": USER, "n": 0}, "n"),
        (
            {"model": "chat", "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content",
        ),
    ],
)
def test_schema_violation_is_400_naming_the_field(gateway: Gateway, body: dict, param: str) -> None:
    error = assert_openai_error(post(gateway, body), 400)
    assert error["param"] is not None and error["param"].startswith(param)
    assert param in error["message"]


def test_completions_and_embeddings_validate_too(gateway: Gateway) -> None:
    assert (
        assert_openai_error(post(gateway, {"model": "chat"}, "/completions"), 400)["param"]
        == "prompt"
    )
    assert (
        assert_openai_error(post(gateway, {"model": "chat"}, "/embeddings"), 400)["param"]
        == "input"
    )


def test_unknown_model_is_404_listing_available(gateway: Gateway) -> None:
    error = assert_openai_error(post(gateway, {"model": "gpt-9", "messages": USER}), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "chat" in error["message"] and "org/chat-2" in error["message"]
    assert_openai_error(httpx.get(gateway.base_url + "/models/gpt-9"), 404)


def test_unknown_route_and_method(gateway: Gateway) -> None:
    assert assert_openai_error(httpx.get(gateway.base_url + "/nope"), 404)["code"] == "unknown_url"
    assert_openai_error(httpx.get(gateway.base_url + "/chat/completions"), 405)


def test_body_over_limit_is_413(gateway: Gateway) -> None:
    huge = {"model": "chat", "messages": [{"role": "user", "content": "x" * 300_000}]}
    assert_openai_error(post(gateway, huge), 413)


def test_upstream_4xx_passes_through_with_its_message(
    gateway: Gateway, flaky: FakeUpstream
) -> None:
    flaky.faults({"status": 400})
    error = assert_openai_error(post(gateway, {"model": "flaky", "messages": USER}), 400)
    assert error["message"] == "injected fault 400"


def test_upstream_500_is_502(gateway: Gateway, flaky: FakeUpstream) -> None:
    flaky.faults({"status": 500})
    assert assert_openai_error(post(gateway, {"model": "flaky", "messages": USER}), 502)["message"]


def test_upstream_503_keeps_503_and_retry_after(gateway: Gateway, flaky: FakeUpstream) -> None:
    flaky.faults({"status": 503, "retry_after": 7})
    response = post(gateway, {"model": "flaky", "messages": USER})
    assert_openai_error(response, 503)
    assert response.headers["retry-after"] == "7"


def test_unreachable_upstream_is_503(gateway: Gateway) -> None:
    response = post(gateway, {"model": "down", "messages": USER})
    assert assert_openai_error(response, 503)["type"] == "service_unavailable"
    assert "retry-after" in response.headers


def test_upstream_timeout_is_504(gateway: Gateway, flaky: FakeUpstream) -> None:
    flaky.faults({"hang": 10})
    error = assert_openai_error(post(gateway, {"model": "flaky", "messages": USER}), 504)
    assert error["type"] == "timeout"


def test_stream_hang_before_first_token_is_504(gateway: Gateway, flaky: FakeUpstream) -> None:
    flaky.faults({"hang": 10})
    response = post(gateway, {"model": "flaky", "messages": USER, "stream": True})
    assert_openai_error(response, 504)


def test_malformed_upstream_json_is_502(gateway: Gateway, flaky: FakeUpstream) -> None:
    flaky.faults({"malformed": True})
    assert_openai_error(post(gateway, {"model": "flaky", "messages": USER}), 502)


@pytest.mark.parametrize(
    "fault", [{"drop_mid_stream": True}, {"hang_mid_stream": 10}, {"malformed": True}]
)
def test_failure_mid_stream_ends_with_an_error_event(
    gateway: Gateway, flaky: FakeUpstream, fault: dict
) -> None:
    flaky.faults(fault)
    body = {
        "model": "flaky",
        "messages": [{"role": "user", "content": "one two three four five"}],
        "stream": True,
    }
    response = post(gateway, body)
    assert response.status_code == 200
    events = [e for e in response.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    error = httpx.Response(200, content=events[-2].removeprefix("data: ")).json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert '"content"' in events[0]  # the stream had really started


def test_sdk_raises_on_mid_stream_error(gateway: Gateway, flaky: FakeUpstream) -> None:
    flaky.faults({"drop_mid_stream": True})
    client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="flaky",
        messages=[{"role": "user", "content": "one two three four five"}],
        stream=True,
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_sdk_sees_typed_errors(gateway: Gateway) -> None:
    client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing", messages=USER)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chat", messages=[])
