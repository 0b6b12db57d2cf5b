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
from typing import Any, Final

# Where a text is in a request: ("messages", 0, "content"). Built as a tuple
# for every text and written out (``param_name``) only for an error.
Where = tuple[str | int, ...]
# (text, where it is) -> the text to keep there
Rewrite = Callable[[str, Where], str]
REQUEST_FIELDS: Final = ("messages", "prompt", "input", "instructions")
MESSAGE_FIELDS: Final = ("content", "reasoning_content", "refusal")


def param_name(where: Where) -> str:
    """OpenAI's name of a place in a request: ``messages[0].content``."""
    parts: list[str] = []
    for step in where:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append(f".{step}" if parts else step)
    return "".join(parts)


def rewrite_request(body: dict[str, Any], rewrite: Rewrite) -> None:
    """Pass every text of a request body through ``rewrite``, in order, in place."""
    for name in REQUEST_FIELDS:
        if name in body:
            body[name] = _rewrite_value(body[name], (name,), rewrite)


def _rewrite_value(value: Any, where: Where, rewrite: Rewrite) -> Any:
    if isinstance(value, str):
        return rewrite(value, where)
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                _rewrite_item(item, (*where, index), rewrite)
            elif isinstance(item, str):
                value[index] = rewrite(item, (*where, index))
        return value
    if isinstance(value, dict):
        _rewrite_item(value, where, rewrite)
    return value


def _rewrite_item(item: dict[str, Any], where: Where, rewrite: Rewrite) -> None:
    """A message, a content part or a Responses input item."""
    content = item.get("content")
    if isinstance(content, str):  # most messages
        item["content"] = rewrite(content, (*where, "content"))
    elif content is not None:
        item["content"] = _rewrite_value(content, (*where, "content"), rewrite)
    text = item.get("text")
    if isinstance(text, str):
        item["text"] = rewrite(text, (*where, "text"))
    calls = item.get("tool_calls")
    if not calls:
        return
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            at = (*where, "tool_calls", index, "function", "arguments")
            function["arguments"] = rewrite(function["arguments"], at)


def request_texts(body: dict[str, Any]) -> list[str]:
    """Every text of a request, in order."""
    texts: list[str] = []

    def collect(text: str, _: Where) -> str:
        texts.append(text)
        return text

    rewrite_request(body, collect)
    return texts


def rewrite_result(result: dict[str, Any], rewrite: Callable[[str], str]) -> None:
    """Pass every text of a non-streamed answer through ``rewrite``, in place."""
    for choice in result.get("choices") or ():
        text = choice.get("text")
        if isinstance(text, str):
            choice["text"] = rewrite(text)
        message = choice.get("message")
        if not isinstance(message, dict):
            continue
        for name in MESSAGE_FIELDS:
            text = message.get(name)
            if isinstance(text, str):
                message[name] = rewrite(text)
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                function["arguments"] = rewrite(function["arguments"])
