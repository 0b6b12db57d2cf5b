"""OpenAI chat completions <-> Anthropic's Messages API, as pure functions.

Requests: system/developer messages become the top-level ``system``; user,
assistant and tool messages become alternating user/assistant turns of
content blocks (same-role neighbours merged, tool results riding in user
turns). Responses and stream events come back as OpenAI's shapes. A field
Anthropic cannot honour is refused by ``FieldPolicy`` (or dropped, when the
operator configured it), never quietly given another meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters.config import DEFAULT_THINKING_BUDGETS
from adapters.errors import GatewayError, InvalidRequestError
from adapters.translation import (
    HTTP_ERROR_KINDS,
    NEUTRAL_VALUES,
    Body,
    ErrorKind,
    FieldPolicy,
    assistant_message,
    chat_completion,
    header,
    merged_turns,
    output_limit,
    parse_data_url,
    stop_list,
    text_parts,
    tool_arguments,
    tool_call,
    unsupported_function_role,
    vendor_error,
)

PROVIDER = "anthropic"

_MAPPED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
        "user",
        "safety_identifier",
    }
)
_NEUTRAL = {**NEUTRAL_VALUES, "response_format": ({"type": "text"},)}
_TOOL_CHOICE = {"auto": "auto", "none": "none", "required": "any"}
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


@dataclass(frozen=True, slots=True)
class AnthropicOptions:
    default_max_tokens: int = 4096
    thinking_budgets: Mapping[str, int] = field(default_factory=DEFAULT_THINKING_BUDGETS.copy)
    drop_unsupported: bool = False


# ---- request -----------------------------------------------------------------


def to_anthropic_request(body: Body, options: AnthropicOptions) -> Body:
    """The Messages API request for one OpenAI chat request."""
    policy = FieldPolicy(PROVIDER, options.drop_unsupported)
    policy.check_fields(body, _MAPPED, _NEUTRAL)
    system, messages = convert_messages(body["messages"], policy)
    request: Body = {"model": body["model"], "messages": messages}
    if system:
        request["system"] = [{"type": "text", "text": text} for text in system]
    request["max_tokens"], thinking = _output_budget(body, options, policy)
    if thinking is not None:
        request["thinking"] = thinking
    request.update(_sampling(body, policy))
    request.update(_tools(body, policy))
    # OpenAI's end-user id for abuse monitoring (safety_identifier replaces user).
    user_id = body.get("safety_identifier") or body.get("user")
    if user_id:
        request["metadata"] = {"user_id": user_id}
    if body.get("stream"):
        request["stream"] = True
    return request


def convert_messages(messages: list[Body], policy: FieldPolicy) -> tuple[list[str], list[Body]]:
    """``(system texts, alternating turns)`` for OpenAI's message list."""

    def turn(role: str, message: Body, where: str) -> tuple[str, list[Body]]:
        if role == "user":
            return "user", _user_blocks(message.get("content"), f"{where}.content", policy)
        if role == "assistant":
            return "assistant", _assistant_blocks(message, where)
        if role == "tool":
            return "user", [_tool_result(message, where)]  # tool results ride in user turns
        raise unsupported_function_role(where, PROVIDER)

    return merged_turns(messages, policy, turn, "content")


def _user_blocks(content: str | list[Body] | None, param: str, policy: FieldPolicy) -> list[Body]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Body] = []
    for index, part in enumerate(content or []):
        where = f"{param}[{index}]"
        kind = part.get("type")
        if kind == "text":
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part["image_url"], f"{where}.image_url", policy))
        elif kind == "file":
            document = _document_block(part["file"], f"{where}.file", policy)
            if document is not None:
                blocks.append(document)
        else:
            policy.unsupported(f"{where}.type", f" for content parts of type '{kind}'")
    return blocks


def _image_block(image: Body, param: str, policy: FieldPolicy) -> Body:
    if image.get("detail") not in (None, "auto"):
        policy.unsupported(f"{param}.detail")
    url = str(image["url"])
    inline = parse_data_url(url, f"{param}.url")
    if inline is not None:
        return {"type": "image", "source": _base64_source(*inline)}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequestError(
        f"'{param}.url' must be an http(s) URL or a data URL.",
        param=f"{param}.url",
        code="invalid_value",
    )


def _document_block(file: Body, param: str, policy: FieldPolicy) -> Body | None:
    data = file.get("file_data")
    if not isinstance(data, str):
        policy.unsupported(f"{param}.file_id", " (only inline file_data can be sent)")
        return None
    inline = parse_data_url(data, f"{param}.file_data")
    if inline is None and str(file.get("filename", "")).lower().endswith(".pdf"):
        inline = ("application/pdf", data)
    if inline is None or inline[0] != "application/pdf":
        policy.unsupported(f"{param}.file_data", " for files other than PDF")
        return None
    return {"type": "document", "source": _base64_source(*inline)}


def _base64_source(media_type: str, data: str) -> Body:
    return {"type": "base64", "media_type": media_type, "data": data}


def _assistant_blocks(message: Body, where: str) -> list[Body]:
    content = message.get("content")
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    else:
        # OpenAI allows only text and refusal parts here; a refusal was said, so it stays text.
        texts.extend(str(part.get("text") or part.get("refusal") or "") for part in content or [])
    blocks: list[Body] = [{"type": "text", "text": text} for text in texts if text]
    for index, call in enumerate(message.get("tool_calls") or []):
        param = f"{where}.tool_calls[{index}].function.arguments"
        function = call["function"]
        arguments = tool_arguments(function["arguments"], param)
        blocks.append(
            {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}
        )
    return blocks


def _tool_result(message: Body, where: str) -> Body:
    call_id = message.get("tool_call_id")
    if not call_id:
        raise InvalidRequestError(
            f"'{where}.tool_call_id' is required for messages with role 'tool'.",
            param=f"{where}.tool_call_id",
            code="missing_required_parameter",
        )
    block: Body = {"type": "tool_result", "tool_use_id": call_id}
    texts = [t for t in text_parts(message.get("content"), f"{where}.content") if t]
    if texts:
        block["content"] = [{"type": "text", "text": text} for text in texts]
    return block


def _output_budget(
    body: Body, options: AnthropicOptions, policy: FieldPolicy
) -> tuple[int, Body | None]:
    """``(max_tokens, thinking)``: Anthropic requires max_tokens, and its
    max_tokens (like OpenAI's max_completion_tokens) includes thinking tokens."""
    limit = output_limit(body)
    effort = body.get("reasoning_effort")
    budget = None
    if effort is not None and effort != "none":
        budget = options.thinking_budgets.get(effort)
        if budget is None:
            known = ", ".join(sorted(options.thinking_budgets))
            policy.unsupported("reasoning_effort", f" with the value '{effort}' (known: {known})")
    if budget is None:
        return (options.default_max_tokens if limit is None else limit), None
    thinking = {"type": "enabled", "budget_tokens": budget}
    if limit is None:
        return options.default_max_tokens + budget, thinking
    if limit <= budget:
        given_new_name = body.get("max_completion_tokens") is not None
        param = "max_completion_tokens" if given_new_name else "max_tokens"
        raise InvalidRequestError(
            f"'{param}' ({limit}) must be larger than the thinking budget ({budget} tokens) "
            f"that reasoning_effort '{effort}' uses on the {PROVIDER} provider.",
            param=param,
            code="invalid_value",
        )
    return limit, thinking


def _sampling(body: Body, policy: FieldPolicy) -> Body:
    out: Body = {}
    temperature = body.get("temperature")
    if temperature is not None:
        if temperature > 1:
            policy.unsupported("temperature", " for values above 1 (Anthropic accepts 0 to 1)")
        else:
            out["temperature"] = temperature
    for key in ("top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    stops = stop_list(body.get("stop"))
    if stops:
        out["stop_sequences"] = stops
    return out


def _tools(body: Body, policy: FieldPolicy) -> Body:
    out: Body = {}
    tools = body.get("tools") or []
    if tools:
        out["tools"] = [_tool(t["function"], f"tools[{i}]", policy) for i, t in enumerate(tools)]
    choice = body.get("tool_choice")
    spec: Body = {}
    if isinstance(choice, str):
        spec = {"type": _TOOL_CHOICE[choice]}
    elif choice is not None:
        spec = {"type": "tool", "name": choice["function"]["name"]}
    if tools and body.get("parallel_tool_calls") is False and spec.get("type") != "none":
        spec = {"type": "auto", **spec, "disable_parallel_tool_use": True}
    if spec and (tools or spec["type"] != "none"):
        out["tool_choice"] = spec
    return out


def _tool(function: Body, param: str, policy: FieldPolicy) -> Body:
    if function.get("strict"):
        policy.unsupported(f"{param}.function.strict")
    spec: Body = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return spec


# ---- response ----------------------------------------------------------------


def finish_reason(stop_reason: str | None) -> str:
    return _FINISH.get(stop_reason or "", "stop")


def openai_usage(usage: Mapping[str, Any]) -> Body:
    """Anthropic counts cached prompt tokens apart from ``input_tokens``; OpenAI's
    prompt_tokens includes them, with the cache reads in ``cached_tokens``."""
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cached
    prompt += int(usage.get("cache_creation_input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def from_anthropic_message(message: Body, created: int) -> Body:
    """OpenAI's chat.completion for one Messages API response."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[Body] = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking", "")))
        elif kind == "tool_use":
            calls.append(tool_call(str(block["id"]), str(block["name"]), block.get("input") or {}))
    choice = {
        "index": 0,
        "message": assistant_message(texts, reasoning, calls),
        "finish_reason": finish_reason(message.get("stop_reason")),
        "logprobs": None,
    }
    usage = openai_usage(message.get("usage") or {})
    response_id, model = str(message.get("id", "")), str(message.get("model", ""))
    return chat_completion(response_id, created, model, [choice], usage)


# ---- errors ------------------------------------------------------------------

_ERROR_TYPES: dict[str, ErrorKind] = {
    "invalid_request_error": "invalid",
    "authentication_error": "auth",
    "permission_error": "permission",
    "not_found_error": "not_found",
    "request_too_large": "too_large",
    "rate_limit_error": "rate_limit",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
    "api_error": "server",
}
_STATUSES: Mapping[int, ErrorKind] = {
    **HTTP_ERROR_KINDS,
    529: "overloaded",  # Anthropic's "overloaded"
}


def error_from_response(status: int, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
    """The gateway error for an Anthropic HTTP error answer."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    kind = _STATUSES.get(status) or _ERROR_TYPES.get(str(error.get("type")))
    if kind is None:
        kind = "invalid" if 400 <= status < 500 else "server"
    message = str(error.get("message") or f"Anthropic API returned HTTP {status}")
    return vendor_error(kind, message, header(headers, "Retry-After"))


def error_from_event(error: Mapping[str, Any]) -> GatewayError:
    """The gateway error for an ``error`` event inside a stream."""
    kind = _ERROR_TYPES.get(str(error.get("type")), "server")
    return vendor_error(kind, str(error.get("message") or "Anthropic API failed mid-stream"))
