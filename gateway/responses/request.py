"""A Responses create request, as the chat completion body a backend gets.

The body is the client's validated JSON object. Fields map as OpenAI's two
APIs line up: ``max_output_tokens`` -> ``max_completion_tokens``,
``text.format`` -> ``response_format``, ``text.verbosity`` -> ``verbosity``,
``reasoning.effort`` -> ``reasoning_effort``, ``tools``/``tool_choice`` through
the tool kinds, ``include: [message.output_text.logprobs]`` + ``top_logprobs``
-> ``logprobs``/``top_logprobs``; ``temperature``, ``top_p``, ``user``,
``safety_identifier``, ``prompt_cache_key``, ``prompt_cache_retention`` and
``service_tier`` pass as they are, and so do fields that are in neither API
(vendor extras such as vLLM's ``top_k``). Fields the gateway cannot honour
are refused with a 400 naming them, never silently dropped.
"""

from __future__ import annotations

from typing import Any

from adapters.errors import InvalidRequestError
from gateway.responses.tools import ToolKinds, unsupported

Body = dict[str, Any]

# Every field of OpenAI's create body (and WebSocket mode's envelope): none of
# them goes to the backend as it is.
RESPONSES_FIELDS = frozenset(
    {
        "access_programs", "background", "background_options", "context_management",
        "conversation", "image", "include", "input", "instructions", "max_output_tokens",
        "max_tool_calls", "metadata", "model", "moderation", "parallel_tool_calls",
        "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_options",
        "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store",
        "stream", "stream_options", "temperature", "text", "tool_choice", "tools",
        "top_logprobs", "top_p", "truncation", "user", "type", "generate", "stream_id",
    }
)  # fmt: skip
PASSED = (
    "temperature",
    "top_p",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
)
# OpenAI features with no chat completion equivalent here.
REFUSED = {
    "prompt": "Reusable prompts (prompt) are not supported by this gateway.",
    "context_management": "Server-side compaction (context_management) is not supported "
    "by this gateway; use truncation: auto.",
    "moderation": "Moderation policies are not supported by this gateway.",
    "access_programs": "access_programs is not supported by this gateway.",
    "image": "Request-level image options are not supported by this gateway.",
    "prompt_cache_options": "prompt_cache_options is not supported by this gateway.",
    "background_options": "Background mode is not supported by this gateway.",
}
LOGPROBS = "message.output_text.logprobs"


def refuse_unsupported(body: Body) -> None:
    """A 400 naming the first field the gateway cannot honour."""
    if body.get("background"):
        raise unsupported(
            "Background mode is not supported by this gateway; use stream: true.", "background"
        )
    for name, message in REFUSED.items():
        if body.get(name) not in (None, [], {}):
            raise unsupported(message, name)
    if body.get("previous_response_id") is not None and body.get("conversation") is not None:
        raise InvalidRequestError(
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    n = body.get("n")
    if n is not None and n != 1:
        raise unsupported("A response has one output: n must be 1 (or absent).", "n")
    reasoning = body.get("reasoning") or {}
    if reasoning.get("mode") is not None:
        raise unsupported("reasoning.mode is not supported by this gateway.", "reasoning.mode")
    if reasoning.get("context") == "all_turns":
        raise unsupported(
            "Reasoning is not carried across turns by this gateway (reasoning.context).",
            "reasoning.context",
        )


def chat_body(body: Body, messages: list[Body], kinds: ToolKinds, *, stream: bool) -> Body:
    """The chat completion request for a (validated, accepted) Responses body."""
    chat: Body = {k: v for k, v in body.items() if k not in RESPONSES_FIELDS}
    chat["model"] = body["model"]
    chat["messages"] = messages
    for name in PASSED:
        value = body.get(name)
        if value is not None:
            chat[name] = value
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    _add_tools(chat, body, kinds)
    _add_text(chat, body.get("text"))
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        chat["reasoning_effort"] = effort
    if LOGPROBS in (body.get("include") or ()):
        chat["logprobs"] = True
        if body.get("top_logprobs"):
            chat["top_logprobs"] = body["top_logprobs"]
    if stream:
        chat["stream"] = True
        # Always ask for usage: accounting and the Response's usage need it.
        chat["stream_options"] = {"include_usage": True}
    return chat


def _add_tools(chat: Body, body: Body, kinds: ToolKinds) -> None:
    tools = kinds.chat_tools(body.get("tools") or [])
    choice, tools = kinds.tool_choice(body.get("tool_choice"), tools)
    if tools:
        chat["tools"] = tools
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    if choice is not None and (tools or choice == "none"):
        chat["tool_choice"] = choice


def _add_text(chat: Body, text: Body | None) -> None:
    if not text:
        return
    if text.get("verbosity") is not None:
        chat["verbosity"] = text["verbosity"]
    form = text.get("format")
    if not form or form["type"] == "text":
        return
    if form["type"] == "json_object":
        chat["response_format"] = {"type": "json_object"}
        return
    schema: Body = {"name": form["name"], "schema": form["schema"]}
    for key in ("description", "strict"):
        if form.get(key) is not None:
            schema[key] = form[key]
    chat["response_format"] = {"type": "json_schema", "json_schema": schema}
