"""Hundreds of malformed bodies: never a 5xx, never a traceback, always OpenAI's error shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Gateway

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "model",
    "messages",
    "prompt",
    "input",
    "stream",
    "n",
    "temperature",
    "max_tokens",
    "tools",
    "tool_choice",
    "response_format",
    "stop",
    "stream_options",
    "logprobs",
]
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
    st.fixed_dictionaries(
        {"model": st.sampled_from(["chat", "nope", ""]), "messages": json_values},
        optional={"stream": json_values, "n": json_values, "temperature": json_values},
    ),
    json_values,
)
raw_bodies = st.binary(max_size=200)


@pytest.fixture(scope="module")
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=10) as client:
        yield client


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, path=st.sampled_from(["/chat/completions", "/completions", "/embeddings"]))
def test_structured_garbage(http: httpx.Client, body: Any, path: str) -> None:
    check(http.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"}))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=raw_bodies)
def test_raw_garbage(http: httpx.Client, raw: bytes) -> None:
    check(http.post("/chat/completions", content=raw))
