"""Pieces shared by the adapters that translate OpenAI's chat format into
another API's (``anthropic_format``, ``gemini_format``): the unsupported-field
policy, the message-list walk, data URLs, tool-call arguments, OpenAI
response builders and the vendor-error table. Everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import orjson

from adapters.errors import (
    GatewayError,
    InvalidRequestError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

Body = dict[str, Any]

_DATA_URL = re.compile(
    r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[^;,]*)*;base64,(?P<data>.*)", re.S
)


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    """What to do with a request field the provider cannot honour: refuse it
    with a 400 naming the field and the provider, or, when the operator set
    ``drop_unsupported``, let the translation leave it out."""

    provider: str
    drop_unsupported: bool = False

    def unsupported(self, param: str, detail: str = "") -> None:
        if self.drop_unsupported:
            return
        raise InvalidRequestError(
            f"'{param}' is not supported by the {self.provider} provider{detail}. Remove it "
            "(the gateway operator can set drop_unsupported: true on the provider to drop "
            "such fields instead).",
            param=param,
            code="unsupported_parameter",
        )

    def check_fields(
        self, body: Body, mapped: frozenset[str], neutral: Mapping[str, tuple[Any, ...]]
    ) -> None:
        """Refuse every top-level field that is neither mapped nor at its no-op value."""
        for key, value in body.items():
            if key in mapped or value is None:
                continue
            if key in neutral and any(value == same for same in neutral[key]):
                continue
            self.unsupported(key)


# Values of OpenAI fields that ask for nothing, so any provider honours them.
NEUTRAL_VALUES: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "logit_bias": ({},),
    "store": (False,),
    "modalities": (["text"],),
    "service_tier": ("auto",),
    "parallel_tool_calls": (True,),
}


def unsupported_endpoint(provider: str, endpoint: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{endpoint} is not available for this model: its {provider} provider has no such API.",
        code="unsupported_endpoint",
    )


def unsupported_function_role(where: str, provider: str) -> InvalidRequestError:
    """The deprecated ``function`` role: no translated API has an equivalent."""
    return InvalidRequestError(
        f"'{where}.role' 'function' (the deprecated functions format) is not supported by "
        f"the {provider} provider; use tools and role 'tool'.",
        param=f"{where}.role",
        code="unsupported_parameter",
    )


# (OpenAI role, message, "messages[i]") -> (the vendor's role, the turn's parts)
TurnConverter = Callable[[str, Body, str], tuple[str, list[Body]]]


def merged_turns(
    messages: list[Body], policy: FieldPolicy, convert: TurnConverter, parts_key: str
) -> tuple[list[str], list[Body]]:
    """``(system texts, turns)``: system and developer messages become system
    texts, every other message a turn made by ``convert``; neighbours of the same
    vendor role merge into one turn, as both vendors want turns that alternate."""
    system: list[str] = []
    turns: list[Body] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message["role"]
        if message.get("name") is not None:
            policy.unsupported(f"{where}.name")
        if role in ("system", "developer"):
            system.extend(t for t in text_parts(message.get("content"), f"{where}.content") if t)
            continue
        turn_role, parts = convert(role, message, where)
        if turns and turns[-1]["role"] == turn_role:
            turns[-1][parts_key].extend(parts)
        else:
            turns.append({"role": turn_role, parts_key: parts})
    return system, turns


def parse_data_url(url: str, param: str) -> tuple[str, str] | None:
    """``(mime type, base64 data)`` of a data URL; None for any other URL."""
    if not url.startswith("data:"):
        return None
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise InvalidRequestError(
            f"Invalid data URL in '{param}': expected data:<mime type>;base64,<data>.",
            param=param,
            code="invalid_value",
        )
    return match["mime"], match["data"]


def tool_arguments(arguments: str, param: str) -> dict[str, Any]:
    """A tool call's ``arguments`` string as the JSON object it must be."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"'{param}' must be a JSON object encoded as a string.",
            param=param,
            code="invalid_value",
        )
    return value


def text_parts(content: str | list[Body] | None, param: str) -> list[str]:
    """The texts of a message that may only hold text (system, developer, tool)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    texts = []
    for index, part in enumerate(content):
        if part.get("type") != "text":
            raise InvalidRequestError(
                f"'{param}[{index}]' must be a text part: this message role takes only text.",
                param=f"{param}[{index}]",
                code="invalid_value",
            )
        texts.append(str(part["text"]))
    return texts


def output_limit(body: Body) -> int | None:
    """OpenAI's two names for the output token limit, the newer one winning."""
    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            return int(body[key])
    return None


def stop_list(stop: str | list[str] | None) -> list[str]:
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)


# ---- OpenAI shapes -----------------------------------------------------------


def assistant_message(texts: list[str], reasoning: list[str], tool_calls: list[Body]) -> Body:
    """OpenAI's assistant message: content is null only beside tool calls."""
    content: str | None = "".join(texts)
    if tool_calls and not texts:
        content = None
    message: Body = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def tool_call(call_id: str, name: str, arguments: Any) -> Body:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }


def chat_completion(
    response_id: str, created: int, model: str, choices: list[Body], usage: Body
) -> Body:
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage,
    }


def chat_chunk(
    response_id: str,
    created: int,
    model: str,
    index: int,
    delta: Body,
    finish_reason: str | None = None,
) -> Body:
    return {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ],
    }


def usage_chunk(response_id: str, created: int, model: str, usage: Body) -> Body:
    """OpenAI's last stream chunk: no choices, the whole usage."""
    return {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage,
    }


# ---- vendor errors -----------------------------------------------------------

ErrorKind = Literal[
    "invalid",
    "auth",
    "permission",
    "not_found",
    "too_large",
    "rate_limit",
    "overloaded",
    "timeout",
    "server",
]

# A vendor's HTTP error status, read as a class of failure (see ``vendor_error``).
HTTP_ERROR_KINDS: Mapping[int, ErrorKind] = MappingProxyType(
    {
        400: "invalid",
        401: "auth",
        403: "permission",
        404: "not_found",
        413: "too_large",
        429: "rate_limit",
        503: "overloaded",
        504: "timeout",
    }
)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name (aiohttp's mapping is; a plain dict is not)."""
    if name in headers:
        return headers[name]
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def vendor_error(kind: ErrorKind, message: str, retry_after: str | None = None) -> GatewayError:
    """The gateway error for one class of vendor failure, keeping the vendor's message.

    Client-side classes keep their meaning (400/401/403/404/413, not retried);
    rate limits stay 429 with Retry-After and may be retried on another
    target; overload is 503 and a vendor's timeout 504, both retryable;
    anything else is a 502.
    """
    if kind == "overloaded":
        return UpstreamUnavailableError(message, retry_after=_seconds(retry_after))
    if kind == "timeout":
        return UpstreamTimeoutError(message)
    if kind == "server":
        return UpstreamError(message)
    status, type_, code = {
        "invalid": (400, "invalid_request_error", None),
        "auth": (401, "authentication_error", "invalid_api_key"),
        "permission": (403, "permission_error", None),
        "not_found": (404, "invalid_request_error", None),
        "too_large": (413, "invalid_request_error", "request_too_large"),
        "rate_limit": (429, "rate_limit_error", "rate_limit_exceeded"),
    }[kind]
    headers = {"Retry-After": retry_after} if retry_after and kind == "rate_limit" else None
    return UpstreamStatusError(status, message, type=type_, code=code, headers=headers)


def _seconds(retry_after: str | None) -> float:
    try:
        return max(1.0, float(retry_after)) if retry_after else 1.0
    except ValueError:
        return 1.0
