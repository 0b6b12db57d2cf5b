"""The pure OpenAI <-> Anthropic Messages API translation of requests,
responses and errors, on fixtures shaped like the examples of Anthropic's API
reference (streams: test_anthropic_stream.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters.anthropic.format import (
    AnthropicOptions,
    error_from_response,
    from_anthropic_message,
    to_anthropic_request,
)
from adapters.errors import GatewayError, InvalidRequestError

OPTIONS = AnthropicOptions(default_max_tokens=1024)
LENIENT = AnthropicOptions(default_max_tokens=1024, drop_unsupported=True)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], **fields}


# ---- requests ----------------------------------------------------------------


def test_system_messages_become_the_top_level_system() -> None:
    request = to_anthropic_request(
        chat(
            messages=[
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hello"},
            ]
        ),
        OPTIONS,
    )
    assert request == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        "system": [
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Answer in French."},
        ],
        "max_tokens": 1024,
    }


def test_consecutive_same_role_messages_merge_and_images_become_image_blocks() -> None:
    request = to_anthropic_request(
        chat(
            messages=[
                {"role": "user", "content": "Look at these."},
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {"type": "text", "text": "What differs?"},
                    ],
                },
            ]
        ),
        OPTIONS,
    )
    assert request["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look at these."},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": "What differs?"},
            ],
        }
    ]


def test_tool_calls_and_tool_results_become_tool_use_and_tool_result_blocks() -> None:
    request = to_anthropic_request(
        chat(
            tools=[WEATHER_TOOL],
            messages=[
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": "Checking both.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location": "Paris"}',
                            },
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location": "Rome"}',
                            },
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {
                    "role": "tool",
                    "tool_call_id": "call_2",
                    "content": [{"type": "text", "text": "24C"}],
                },
                {"role": "user", "content": "Which is warmer?"},
            ],
        ),
        OPTIONS,
    )
    assert request["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert [m["role"] for m in request["messages"]] == ["user", "assistant", "user"]
    assert request["messages"][1]["content"] == [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"location": "Rome"}},
    ]
    # Both results and the next question ride in one user turn, results first.
    assert request["messages"][2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "call_1",
            "content": [{"type": "text", "text": "18C"}],
        },
        {
            "type": "tool_result",
            "tool_use_id": "call_2",
            "content": [{"type": "text", "text": "24C"}],
        },
        {"type": "text", "text": "Which is warmer?"},
    ]


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice_mapping(tool_choice: Any, parallel: bool | None, expected: dict) -> None:
    body = chat(tools=[WEATHER_TOOL], tool_choice=tool_choice, parallel_tool_calls=parallel)
    assert to_anthropic_request(body, OPTIONS)["tool_choice"] == expected


def test_sampling_stop_user_and_stream_map_to_their_anthropic_names() -> None:
    request = to_anthropic_request(
        chat(
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            stop="\n\nHuman:",
            user="u-42",
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=300,
        ),
        OPTIONS,
    )
    assert request["temperature"] == 0.2 and request["top_p"] == 0.9 and request["top_k"] == 40
    assert request["stop_sequences"] == ["\n\nHuman:"]
    assert request["metadata"] == {"user_id": "u-42"}
    assert request["stream"] is True and request["max_tokens"] == 300
    assert "stream_options" not in request
    request = to_anthropic_request(chat(user="u-42", safety_identifier="hash-7"), OPTIONS)
    assert request["metadata"] == {"user_id": "hash-7"}


def test_max_completion_tokens_wins_and_the_default_fills_in() -> None:
    both = chat(max_tokens=10, max_completion_tokens=20)
    assert to_anthropic_request(both, OPTIONS)["max_tokens"] == 20
    assert to_anthropic_request(chat(), AnthropicOptions(default_max_tokens=77))["max_tokens"] == 77


def test_reasoning_effort_becomes_a_thinking_budget() -> None:
    request = to_anthropic_request(chat(reasoning_effort="medium"), OPTIONS)
    assert request["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert request["max_tokens"] == 1024 + 8192  # room to answer after thinking
    body = chat(reasoning_effort="low", max_completion_tokens=5000)
    request = to_anthropic_request(body, OPTIONS)
    assert request["thinking"]["budget_tokens"] == 2048 and request["max_tokens"] == 5000
    assert "thinking" not in to_anthropic_request(chat(reasoning_effort="none"), OPTIONS)
    with pytest.raises(InvalidRequestError) as caught:
        to_anthropic_request(chat(reasoning_effort="high", max_tokens=1000), OPTIONS)
    assert caught.value.param == "max_tokens" and "16384" in caught.value.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"n": 2}, "n"),
        ({"seed": 7}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"temperature": 1.5}, "temperature"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages[0].name"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "input_audio",
                                "input_audio": {"data": "AAAA", "format": "wav"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {**WEATHER_TOOL["function"], "strict": True}}
                ]
            },
            "tools[0].function.strict",
        ),
    ],
)
def test_fields_anthropic_cannot_honour_are_refused_or_dropped(fields: dict, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        to_anthropic_request(chat(**fields), OPTIONS)
    assert caught.value.status == 400 and caught.value.param == param
    assert caught.value.code == "unsupported_parameter"
    assert f"'{param}'" in caught.value.message and "anthropic" in caught.value.message
    # With drop_unsupported the request goes out without it, and nothing else changes.
    request = to_anthropic_request(chat(**fields), LENIENT)
    flat = orjson.dumps(request).decode()
    for dropped in ("logprobs", "seed", "bias", "penalty", "json_object", "audio", "bob", "strict"):
        assert dropped not in flat
    assert "temperature" not in request and "thinking" not in request


def test_neutral_values_ask_for_nothing_and_pass() -> None:
    body = chat(
        n=1,
        logprobs=False,
        presence_penalty=0,
        frequency_penalty=0,
        store=False,
        response_format={"type": "text"},
        parallel_tool_calls=True,
    )
    assert to_anthropic_request(body, OPTIONS) == to_anthropic_request(chat(), OPTIONS)


def test_tool_call_arguments_must_be_a_json_object() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{not json"},
                }
            ],
        },
    ]
    with pytest.raises(InvalidRequestError) as caught:
        to_anthropic_request(chat(messages=messages), OPTIONS)
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"


# ---- responses ---------------------------------------------------------------


def test_text_response() -> None:
    message = {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hi! My name is Claude."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 2095, "output_tokens": 503},
    }
    assert from_anthropic_message(message, created=1700000000) == {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "claude-sonnet-4-5",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi! My name is Claude."},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 2095,
            "completion_tokens": 503,
            "total_tokens": 2598,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }


def test_tool_use_thinking_and_cache_usage_response() -> None:
    message = {
        "id": "msg_01Aq9w938a90dw8q",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {
                "type": "thinking",
                "thinking": "The user wants weather.",
                "signature": "EqQBCgIYAhIM",
            },
            {"type": "text", "text": "I'll check."},
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "get_weather",
                "input": {"location": "San Francisco, CA", "unit": "celsius"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 50,
            "output_tokens": 40,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 10,
        },
    }
    result = from_anthropic_message(message, created=1)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check."
    assert choice["message"]["reasoning_content"] == "The user wants weather."
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9" and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], str)
    arguments = orjson.loads(call["function"]["arguments"])
    assert arguments == {"location": "San Francisco, CA", "unit": "celsius"}
    assert result["usage"] == {
        "prompt_tokens": 1060,
        "completion_tokens": 40,
        "total_tokens": 1100,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reason_becomes_finish_reason(stop_reason: str, finish: str) -> None:
    message = {"id": "m", "model": "c", "content": [], "stop_reason": stop_reason, "usage": {}}
    assert from_anthropic_message(message, created=1)["choices"][0]["finish_reason"] == finish


# ---- errors ------------------------------------------------------------------


def error_body(kind: str, message: str) -> bytes:
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
        }
    )


@pytest.mark.parametrize(
    ("status", "kind", "expected_status", "retryable", "error_type"),
    [
        (400, "invalid_request_error", 400, False, "invalid_request_error"),
        (401, "authentication_error", 401, False, "authentication_error"),
        (403, "permission_error", 403, False, "permission_error"),
        (404, "not_found_error", 404, False, "invalid_request_error"),
        (413, "request_too_large", 413, False, "invalid_request_error"),
        (429, "rate_limit_error", 429, True, "rate_limit_error"),
        (500, "api_error", 502, True, "upstream_error"),
        (529, "overloaded_error", 503, True, "service_unavailable"),
        (504, "timeout_error", 504, True, "timeout"),
    ],
)
def test_vendor_errors_map_to_gateway_errors(
    status: int, kind: str, expected_status: int, retryable: bool, error_type: str
) -> None:
    error = error_from_response(status, error_body(kind, f"vendor says {kind}"), {})
    assert isinstance(error, GatewayError)
    assert (error.status, error.retryable, error.type) == (expected_status, retryable, error_type)
    assert error.message == f"vendor says {kind}"


def test_retry_after_is_kept_on_rate_limits_and_overload() -> None:
    body = error_body("rate_limit_error", "slow down")
    limited = error_from_response(429, body, {"retry-after": "30"})
    assert limited.headers["Retry-After"] == "30"
    body = error_body("overloaded_error", "Overloaded")
    overloaded = error_from_response(529, body, {"Retry-After": "12"})
    assert overloaded.status == 503 and overloaded.headers["Retry-After"] == "12"


def test_an_error_body_that_is_not_json_is_a_502() -> None:
    error = error_from_response(502, b"<html>Bad Gateway</html>", {})
    assert error.status == 502 and error.retryable
