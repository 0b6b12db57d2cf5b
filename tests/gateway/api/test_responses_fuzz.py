"""Malformed bodies on the Responses and Conversations endpoints, and frames on
the WebSocket: never a 5xx, never a traceback, always OpenAI's error shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from tests.gateway.api.test_fuzz import check, json_values
from tests.helpers import Gateway

RESPONSE_FIELDS = [
    "model",
    "input",
    "instructions",
    "previous_response_id",
    "conversation",
    "store",
    "stream",
    "tools",
    "tool_choice",
    "text",
    "max_output_tokens",
    "temperature",
    "reasoning",
    "truncation",
    "metadata",
    "include",
    "background",
    "generate",
]
items = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(
                ["message", "function_call", "function_call_output", "reasoning", "x", ""]
            )
            | json_values,
            "role": st.sampled_from(["user", "assistant", "system", "developer", "bot"]),
            "content": json_values
            | st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["input_text", "input_image", "input_file", "?"])},
                    optional={"text": json_values, "image_url": json_values},
                ),
                max_size=3,
            ),
            "call_id": json_values,
            "name": json_values,
            "arguments": json_values,
            "output": json_values,
        },
    ),
    max_size=4,
)
responses_bodies = st.one_of(
    st.dictionaries(st.sampled_from(RESPONSE_FIELDS), json_values, max_size=6),
    st.fixed_dictionaries(
        {"model": st.sampled_from(["chat", "nope", ""]), "input": json_values | items},
        optional={
            "stream": st.booleans() | json_values,
            "store": st.booleans() | json_values,
            "truncation": st.sampled_from(["auto", "disabled", "x"]),
            "previous_response_id": json_values,
            "conversation": json_values,
            "tools": json_values,
            "tool_choice": json_values,
            "text": json_values,
        },
    ),
    json_values,
)
conversation_bodies = st.one_of(
    st.fixed_dictionaries({}, optional={"items": items | json_values, "metadata": json_values}),
    json_values,
)


@pytest.fixture(scope="module")
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def conversation(http: httpx.Client) -> str:
    return str(http.post("/conversations", json={}).json()["id"])


def post(http: httpx.Client, path: str, body: Any) -> httpx.Response:
    return http.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=responses_bodies)
def test_create_response_garbage(http: httpx.Client, body: Any) -> None:
    check(post(http, "/responses", body))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=conversation_bodies, where=st.sampled_from(["", "/items", "/update"]))
def test_conversation_garbage(http: httpx.Client, conversation: str, body: Any, where: str) -> None:
    path = {"": "/conversations", "/items": f"/conversations/{conversation}/items"}.get(
        where, f"/conversations/{conversation}"
    )
    check(post(http, path, body))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    identifier=st.text(max_size=30),
    query=st.dictionaries(
        st.sampled_from(["after", "limit", "order", "include"]), st.text(max_size=8), max_size=3
    ),
    path=st.sampled_from(
        [
            "/responses/{}",
            "/responses/{}/input_items",
            "/conversations/{}/items",
            "/conversations/{}",
        ]
    ),
)
def test_lookups_with_garbage_ids_and_queries(
    http: httpx.Client, identifier: str, query: dict[str, str], path: str
) -> None:
    url = path.format(quote(identifier, safe="") or "x")
    for method in ("GET", "DELETE"):
        check(http.request(method, url, params=query))


@pytest.fixture(scope="module")
def socket(gateway: Gateway) -> Iterator[ClientConnection]:
    with connect(gateway.base_url.replace("http", "ws", 1) + "/responses") as connection:
        yield connection


def answers(socket: ClientConnection) -> list[dict[str, Any]]:
    """The events one frame brought: an error, or a response's events to its end."""
    events = [orjson.loads(socket.recv(timeout=10))]
    if events[0]["type"] == "error":
        return events
    while events[-1]["type"] not in (
        "response.completed",
        "response.incomplete",
        "response.failed",
    ):
        events.append(orjson.loads(socket.recv(timeout=10)))
    return events


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=responses_bodies)
def test_websocket_frames_never_break_the_socket(socket: ClientConnection, body: Any) -> None:
    if isinstance(body, dict):
        body = {**body, "type": "response.create"}
    socket.send(json.dumps(body))
    events = answers(socket)
    if events[0]["type"] == "error":
        error = events[0]
        assert 400 <= error["status"] < 500, error
        assert set(error["error"]) == {"message", "type", "param", "code"}
    else:
        assert events[0]["type"] == "response.created"
