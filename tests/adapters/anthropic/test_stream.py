"""Anthropic's Messages API event streams -> OpenAI chunks, on transcripts shaped
like the streaming examples of Anthropic's API reference (fixtures/anthropic_*.sse)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters.anthropic.stream import AnthropicStream
from adapters.errors import UpstreamUnavailableError
from tests.adapters.support import transcript


def run_stream(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stream = AnthropicStream(created=1700000000)
    chunks = [chunk for event in events for chunk in stream.feed(event)]
    assert stream.done
    return chunks


TEXT_STREAM = transcript("anthropic_text_stream.sse")


def test_text_stream_becomes_openai_chunks_in_order() -> None:
    chunks = run_stream(TEXT_STREAM)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["id"] == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY" for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas == [{"role": "assistant", "content": "Hello"}, {"content": "!"}, {}]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:3]] == [None, None, "stop"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 25,
        "completion_tokens": 15,
        "total_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


TOOL_STREAM = transcript("anthropic_tool_stream.sse")


def test_tool_use_stream_carries_argument_deltas() -> None:
    chunks = run_stream(TOOL_STREAM)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": "Let me check the weather:"}
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(call["index"] == 0 for call in calls)
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert orjson.loads(arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 89


THINKING_STREAM = transcript("anthropic_thinking_stream.sse")


def test_thinking_stream_becomes_reasoning_content() -> None:
    chunks = run_stream(THINKING_STREAM)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    assert reasoning == "27 * 453: first 27 * 400 = 10800, then 27 * 53 = 1431."
    assert "".join(d.get("content", "") for d in deltas) == "27 * 453 = 12,231"
    assert deltas[0]["role"] == "assistant" and "role" not in deltas[1]
    assert "EqQB" not in orjson.dumps(chunks).decode()  # signatures have no OpenAI field
    assert chunks[-1]["usage"]["prompt_tokens"] == 42
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 12}


def test_error_event_mid_stream_is_a_retryable_503_when_overloaded() -> None:
    stream = AnthropicStream(created=1)
    events = list(TEXT_STREAM)
    for event in events[:4]:
        stream.feed(event)
    with pytest.raises(UpstreamUnavailableError) as caught:
        stream.feed(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        )
    assert caught.value.status == 503 and caught.value.retryable
    assert caught.value.message == "Overloaded"


def test_unknown_events_are_ignored() -> None:
    stream = AnthropicStream(created=1700000000)
    events = list(TEXT_STREAM)
    events.insert(3, {"type": "some_future_event", "index": 0})
    chunks = [chunk for event in events for chunk in stream.feed(event)]
    assert chunks == run_stream(TEXT_STREAM)
