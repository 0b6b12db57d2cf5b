"""A chat completion, as the Response object OpenAI returns.

``echo`` builds the fields of a Response that restate its request (the same
in every event of a turn); ``output_items`` turns a chat choice into output
items (a ``reasoning`` item for a reasoning model's ``reasoning_content``, a
``message`` with ``output_text`` (and ``refusal``) parts, one ``function_call``
per tool call); ``usage`` maps chat usage to Responses usage; ``finished``
gives the status a finish reason means.
"""

from __future__ import annotations

import time
from typing import Any

from adapters.errors import GatewayError
from gateway.responses.citations import Citations
from gateway.responses.ids import new_id

Body = dict[str, Any]
# Chat finish reasons that leave a response incomplete, and why (OpenAI's words).
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def echo(
    body: Body,
    *,
    response_id: str,
    model: str,
    store: bool,
    conversation: str | None,
) -> Body:
    """A Response in progress: the request's settings, no output yet."""
    text = body.get("text") or {}
    reasoning = body.get("reasoning") or {}
    parallel = body.get("parallel_tool_calls")
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "conversation": None if conversation is None else {"id": conversation},
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "metadata": body.get("metadata") or {},
        "model": model,
        "output": [],
        "parallel_tool_calls": True if parallel is None else parallel,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {
            "effort": reasoning.get("effort"),
            "summary": reasoning.get("summary") or reasoning.get("generate_summary"),
        },
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": body.get("service_tier") or "default",
        "store": store,
        "temperature": body.get("temperature"),
        "text": {
            "format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity") or "medium",
        },
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs") or 0,
        "top_p": body.get("top_p"),
        "truncation": body.get("truncation") or "disabled",
        "usage": None,
        "user": body.get("user"),
    }


def finished(
    response: Body, output: list[Body], usage: Body | None, finish_reason: str | None
) -> Body:
    """The Response once its output is complete (or cut short by a finish reason)."""
    reason = INCOMPLETE.get(finish_reason or "")
    return {
        **response,
        "status": "completed" if reason is None else "incomplete",
        "completed_at": int(time.time()) if reason is None else None,
        "incomplete_details": None if reason is None else {"reason": reason},
        "output": output,
        "usage": usage,
    }


def failed(response: Body, output: list[Body], error: Body) -> Body:
    return {**response, "status": "failed", "output": output, "error": error}


def output_items(choice: Body, with_logprobs: bool) -> list[Body]:
    """The output items of one chat choice, in the order OpenAI gives them."""
    message = choice.get("message") or {}
    status = "incomplete" if choice.get("finish_reason") in INCOMPLETE else "completed"
    items: list[Body] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        items.append(reasoning_item(new_id("rs"), reasoning, status))
    content = message.get("content")
    refusal = message.get("refusal")
    calls = message.get("tool_calls") or []
    if content or refusal or not calls:
        parts: list[Body] = []
        if content or not refusal:
            logprobs = choice.get("logprobs") if with_logprobs else None
            parts.append(text_part(content or "", logprobs_of(logprobs)))
        if refusal:
            parts.append({"type": "refusal", "refusal": refusal})
        items.append(message_item(new_id("msg"), parts, status))
    for call in calls:
        function = call.get("function") or {}
        items.append(
            function_call_item(
                new_id("fc"),
                call.get("id") or new_id("call"),
                function.get("name", ""),
                function.get("arguments") or "",
                status,
            )
        )
    return items


def text_part(
    text: str, logprobs: list[Body] | None = None, annotations: list[Body] | None = None
) -> Body:
    return {
        "type": "output_text",
        "text": text,
        "annotations": annotations or [],
        "logprobs": logprobs or [],
    }


def cite(items: list[Body], citations: Citations | None) -> list[Body]:
    """The items with the first answer text's source markers made annotations."""
    if citations is None:
        return items
    cited = list(items)
    for position, item in enumerate(cited):
        if item["type"] != "message":
            continue
        for index, part in enumerate(item["content"]):
            if part["type"] == "output_text":
                text, annotations = citations.annotate(part["text"])
                content = list(item["content"])
                content[index] = {**part, "text": text, "annotations": annotations}
                cited[position] = {**item, "content": content}
                return cited
    return cited


def message_item(item_id: str, parts: list[Body], status: str) -> Body:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": parts,
    }


def reasoning_item(item_id: str, text: str | None, status: str) -> Body:
    content = [] if text is None else [{"type": "reasoning_text", "text": text}]
    return {"id": item_id, "type": "reasoning", "summary": [], "content": content, "status": status}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> Body:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def logprobs_of(logprobs: Body | None) -> list[Body]:
    """Chat logprobs (``content``) in Responses' shape, which is the same per token."""
    if not logprobs:
        return []
    return [
        {
            "token": entry.get("token", ""),
            "logprob": entry.get("logprob", 0.0),
            "bytes": entry.get("bytes") or [],
            "top_logprobs": [
                {
                    "token": t.get("token", ""),
                    "logprob": t.get("logprob", 0.0),
                    "bytes": t.get("bytes") or [],
                }
                for t in entry.get("top_logprobs") or ()
            ],
        }
        for entry in logprobs.get("content") or ()
    ]


def usage(chat: Body | None) -> Body:
    """Chat usage (prompt/completion) in Responses' terms (input/output)."""
    chat = chat or {}
    prompt = int(chat.get("prompt_tokens") or 0)
    completion = int(chat.get("completion_tokens") or 0)
    cached = (chat.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (chat.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": int(chat.get("total_tokens") or prompt + completion),
    }


def failure(exc: GatewayError) -> tuple[Body, Body]:
    """A failure as the ``error`` event tells it (the gateway's own code), and as
    the failed Response's ``error`` (whose code is one of OpenAI's few)."""
    raised = {"type": exc.type, "code": exc.code, "message": exc.message, "param": exc.param}
    code = "rate_limit_exceeded" if exc.status == 429 else "server_error"
    return raised, {"code": code, "message": exc.message, "param": exc.param, "type": exc.type}
