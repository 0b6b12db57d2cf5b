"""Where the text of a request and of an answer lives, so guardrails can read
and rewrite it in place whatever the endpoint.

Requests: chat ``messages`` (string content, text parts, tool-call
arguments), completions ``prompt``, embeddings and Responses ``input`` (strings,
or items whose ``content`` is a string or parts with ``text``) and Responses
``instructions``. Answers: each choice's message (content, reasoning,
refusal, tool-call arguments) or text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (text, param naming where it is) -> the text to keep there
Rewrite = Callable[[str, str], str]
REQUEST_FIELDS = ("messages", "prompt", "input", "instructions")
MESSAGE_FIELDS = ("content", "reasoning_content", "refusal")


def rewrite_request(body: dict[str, Any], rewrite: Rewrite) -> None:
    """Pass every text of a request body through ``rewrite``, in order, in place."""
    for name in REQUEST_FIELDS:
        if name in body:
            body[name] = _rewrite_value(body[name], name, rewrite)


def _rewrite_value(value: Any, param: str, rewrite: Rewrite) -> Any:
    if isinstance(value, str):
        return rewrite(value, param)
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str | dict):
                value[index] = _rewrite_value(item, f"{param}[{index}]", rewrite)
        return value
    if isinstance(value, dict):
        _rewrite_item(value, param, rewrite)
    return value


def _rewrite_item(item: dict[str, Any], param: str, rewrite: Rewrite) -> None:
    """A message, a content part or a Responses input item."""
    content = item.get("content")
    if content is not None:
        item["content"] = _rewrite_value(content, f"{param}.content", rewrite)
    text = item.get("text")
    if isinstance(text, str):
        item["text"] = rewrite(text, f"{param}.text")
    for index, call in enumerate(item.get("tool_calls") or ()):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            where = f"{param}.tool_calls[{index}].function.arguments"
            function["arguments"] = rewrite(function["arguments"], where)


def request_texts(body: dict[str, Any]) -> list[str]:
    """Every text of a request, in order."""
    texts: list[str] = []

    def collect(text: str, _: str) -> str:
        texts.append(text)
        return text

    rewrite_request(body, collect)
    return texts


def rewrite_result(result: dict[str, Any], rewrite: Callable[[str], str]) -> None:
    """Pass every text of a non-streamed answer through ``rewrite``, in place."""
    for choice in result.get("choices") or ():
        if isinstance(choice.get("text"), str):
            choice["text"] = rewrite(choice["text"])
        message = choice.get("message")
        if not isinstance(message, dict):
            continue
        for name in MESSAGE_FIELDS:
            if isinstance(message.get(name), str):
                message[name] = rewrite(message[name])
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                function["arguments"] = rewrite(function["arguments"])
