"""Gemini's streamGenerateContent SSE chunks -> OpenAI chunks, on transcripts
shaped like the streaming examples of Google's Gemini API reference
(fixtures/gemini_*.sse)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters.errors import UpstreamError
from adapters.gemini.stream import GeminiStream
from tests.adapters.support import transcript


def run_stream(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stream = GeminiStream(created=1700000000, id_prefix="call_x_")
    chunks = [chunk for event in events for chunk in stream.feed(event)]
    return chunks + stream.finish()


TEXT_STREAM = transcript("gemini_text_stream.sse")


def test_text_stream_becomes_openai_chunks_in_order() -> None:
    chunks = run_stream(TEXT_STREAM)
    assert all(c["id"] == "tTCwacuEBMvn" and c["object"] == "chat.completion.chunk" for c in chunks)
    deltas = [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks[:-1]]
    assert deltas == [
        ({"role": "assistant", "content": "The"}, None),
        ({"content": " capital is Paris"}, None),
        ({}, "stop"),
    ]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 11
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert chunks[-1]["usage"]["total_tokens"] == 16


FUNCTION_STREAM = transcript("gemini_function_stream.sse")


def test_function_call_stream_sends_the_call_whole_then_tool_calls_finish() -> None:
    chunks = run_stream(FUNCTION_STREAM)
    assert chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "reasoning_content": "Thinking about the lights.",
    }
    [call] = chunks[1]["choices"][0]["delta"]["tool_calls"]
    assert call["index"] == 0 and call["id"] == "call_x_0" and call["type"] == "function"
    assert orjson.loads(call["function"]["arguments"]) == {"brightness": 25, "color_temp": "warm"}
    assert chunks[2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 9}
    assert chunks[-1]["usage"]["completion_tokens"] == 29


def test_a_stream_that_ends_before_any_finish_is_an_error() -> None:
    stream = GeminiStream(created=1, id_prefix="c_")
    stream.feed(TEXT_STREAM[0])
    with pytest.raises(UpstreamError):
        stream.finish()


def test_an_error_inside_the_stream_is_raised_with_its_status() -> None:
    stream = GeminiStream(created=1, id_prefix="c_")
    with pytest.raises(UpstreamError) as caught:
        stream.feed(
            {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
        )
    assert caught.value.status == 503 and caught.value.retryable
