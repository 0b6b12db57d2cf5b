"""A Responses request as the chat completion body a backend gets, and the
fields the gateway refuses (400 naming each)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.errors import InvalidRequestError
from gateway.responses.request import chat_body, refuse_unsupported
from gateway.responses.tools import default_tool_kinds

KINDS = default_tool_kinds()
MESSAGES = [{"role": "user", "content": "hi"}]
WEATHER = {"type": "function", "name": "weather", "parameters": {"type": "object"}}


def chat(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    refuse_unsupported(body)
    return chat_body({"model": "m", **body}, MESSAGES, KINDS, stream=stream)


def test_sampling_and_limits_map_to_chat_names() -> None:
    body = chat(
        {
            "max_output_tokens": 64,
            "temperature": 0.2,
            "top_p": 0.9,
            "user": "u1",
            "safety_identifier": "s1",
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"verbosity": "low"},
            "metadata": {"k": "v"},
            "store": True,
            "truncation": "auto",
        }
    )
    assert body == {
        "model": "m",
        "messages": MESSAGES,
        "max_completion_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "u1",
        "safety_identifier": "s1",
        "reasoning_effort": "low",
        "verbosity": "low",
    }


def test_vendor_extras_pass_through_and_streams_ask_for_usage() -> None:
    body = chat({"top_k": 20, "min_p": 0.1}, stream=True)
    assert body["top_k"] == 20 and body["min_p"] == 0.1
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_text_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = chat(
        {
            "text": {
                "format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}
            }
        }
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": schema, "strict": True},
    }
    assert chat({"text": {"format": {"type": "json_object"}}})["response_format"] == {
        "type": "json_object"
    }
    assert "response_format" not in chat({"text": {"format": {"type": "text"}}})


def test_function_tools_and_tool_choice() -> None:
    body = chat(
        {
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "weather"},
            "parallel_tool_calls": False,
        }
    )
    assert body["tools"] == [
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert body["parallel_tool_calls"] is False


def test_allowed_tools_narrows_the_tools_offered() -> None:
    other = {"type": "function", "name": "other"}
    choice = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "other"}],
    }
    body = chat({"tools": [WEATHER, other], "tool_choice": choice})
    assert [t["function"]["name"] for t in body["tools"]] == ["other"]
    assert body["tool_choice"] == "required"


def test_logprobs_only_when_included() -> None:
    assert "logprobs" not in chat({"top_logprobs": 3})
    body = chat({"include": ["message.output_text.logprobs"], "top_logprobs": 3})
    assert body["logprobs"] is True and body["top_logprobs"] == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"background": True}, "background"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"context_management": [{"type": "compaction"}]}, "context_management"),
        ({"tools": [WEATHER, {"type": "web_search"}]}, "tools[1].type"),
        ({"tools": [WEATHER], "tool_choice": {"type": "file_search"}}, "tool_choice.type"),
        ({"tools": [{**WEATHER, "defer_loading": True}]}, "tools[0].defer_loading"),
        ({"n": 2}, "n"),
        ({"reasoning": {"mode": "pro"}}, "reasoning.mode"),
        ({"previous_response_id": "resp_1", "conversation": "conv_1"}, "conversation"),
    ],
)
def test_unsupported_fields_are_refused_by_name(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        chat(body)
    assert caught.value.param == param
    assert caught.value.status == 400


def test_no_op_values_pass() -> None:
    body = chat({"background": False, "prompt": None, "context_management": [], "n": 1})
    assert body["messages"] == MESSAGES
