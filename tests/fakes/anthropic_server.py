"""A fake of Anthropic's Messages API for tests, following its documented wire format.

Run it as a process: ``python -m tests.fakes.anthropic_server --port P --api-key K [--name N]``.

It checks requests the way the real API does and answers errors in its shape
(``{"type": "error", "error": {"type", "message"}}``): ``x-api-key`` (401),
``anthropic-version`` (400), required ``model``/``max_tokens``/``messages``,
unknown top-level fields, roles user/assistant only, alternating and starting
with user, non-empty content blocks of the types each role may send, every
``tool_result`` answering a ``tool_use`` of the assistant turn just before
(and every ``tool_use`` answered), temperature in 0..1, tools with
``input_schema``, thinking budgets (>= 1024 and below max_tokens).

It answers ``"<name>: <last user text>"`` (or the last tool result's text), with
a thinking block first when thinking is enabled, and a ``tool_use`` block when
tools are given and tool_choice forces one or the text says ``[tool]``.
``[max]`` ends with stop_reason max_tokens, ``[cached]`` reports 7 cache-read
tokens, a stop sequence found in the text ends it there. Streams follow the
documented event flow (message_start, content_block_start, ping,
content_block_delta..., content_block_stop, message_delta, message_stop).

Faults (``POST /_faults``), one per request: ``{"status": 529, "retry_after": 30}``,
``{"stream_error": "overloaded_error", "after": 0}`` (an ``error`` event after that
many content deltas), ``{"truncate": true}`` (the body ends before message_stop).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai_server import STATE
from tests.fakes.vendor import json_response, new_app, next_fault, record

Body = dict[str, Any]
_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
}
_BLOCKS = {
    "user": {"text", "image", "document", "tool_result"},
    "assistant": {"text", "tool_use", "thinking", "redacted_thinking"},
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    payload = {
        "type": "error",
        "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": "req_fake",
    }
    return json_response(payload, status, headers)


def _blocks(content: Any) -> list[Body]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])


def _check_block(where: str, role: str, block: Body, answerable: set[str]) -> str | None:
    kind = block.get("type")
    if kind not in _BLOCKS[role]:
        return f"{where}.type: '{kind}' blocks are not allowed in '{role}' messages"
    if kind == "text" and not block.get("text"):
        return f"{where}.text: text content blocks must be non-empty"
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            if source.get("media_type") not in _IMAGE_TYPES or not source.get("data"):
                return f"{where}.source: invalid base64 image source"
        elif source.get("type") != "url" or not str(source.get("url", "")).startswith("http"):
            return f"{where}.source: invalid image source"
    if kind == "tool_result" and block.get("tool_use_id") not in answerable:
        return (
            f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
            f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
            "`tool_use` block in the previous message."
        )
    complete = block.get("id") and block.get("name") and isinstance(block.get("input"), dict)
    if kind == "tool_use" and not complete:
        return f"{where}: tool_use blocks need id, name and an object input"
    return None


def _check_messages(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    pending: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in _BLOCKS:
            return (
                f'messages.{index}.role: Unexpected role "{role}". The Messages API accepts a '
                'top-level `system` parameter, not "system" as an input message role.'
                if role == "system"
                else f"messages.{index}.role: Input should be 'user' or 'assistant'"
            )
        if index == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        if index > 0 and role == messages[index - 1].get("role"):
            return (
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            )
        blocks = _blocks(message.get("content"))
        if not blocks and not (role == "assistant" and index == len(messages) - 1):
            return (
                f"messages.{index}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
        for position, block in enumerate(blocks):
            problem = _check_block(f"messages.{index}.content.{position}", role, block, pending)
            if problem:
                return problem
        if role == "user":
            answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if pending - answered:
                return (
                    f"messages.{index}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(sorted(pending - answered))}"
                )
            pending = set()
        else:
            pending = {b["id"] for b in blocks if b.get("type") == "tool_use"}
    return None


def _check_options(body: Body) -> str | None:
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: Input should be less than or equal to 1"
    system = body.get("system")
    blocks = [] if system is None or isinstance(system, str) else system
    if any(b.get("type") != "text" or not b.get("text") for b in blocks):
        return "system: system blocks must be non-empty text blocks"
    for index, tool in enumerate(body.get("tools") or []):
        if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
            return f"tools.{index}.input_schema: Field required"
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
        if choice["type"] == "tool" and not choice.get("name"):
            return "tool_choice.tool.name: Field required"
    thinking = body.get("thinking")
    if thinking is not None and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens", 0)
        if budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= body["max_tokens"]:
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
    if set(body.get("metadata") or {}) - {"user_id"}:
        return "metadata: Extra inputs are not permitted"
    return None


def check(request: web.Request, state: dict[str, Any], body: Any) -> web.Response | None:
    if request.headers.get("x-api-key") != state["api_key"]:
        return error(401, "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        return error(400, "anthropic-version: header is required")
    if not isinstance(body, dict):
        return error(400, "There was an error parsing the body of your request as JSON")
    for key in body:
        if key not in _FIELDS:
            return error(400, f"{key}: Extra inputs are not permitted")
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return error(400, f"{key}: Field required")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return error(400, "max_tokens: Input should be greater than or equal to 1")
    problem = _check_messages(body["messages"]) or _check_options(body)
    return error(400, problem) if problem else None


def _last_user_text(messages: list[Body]) -> str:
    texts = []
    for block in _blocks(messages[-1].get("content")):
        if block.get("type") == "text":
            texts.append(block["text"])
        elif block.get("type") == "tool_result":
            texts.extend(b.get("text", "") for b in _blocks(block.get("content")))
    return " ".join(texts)


def answer(name: str, body: Body) -> Body:
    """The complete Message this fake answers with (streams send it as events)."""
    said = _last_user_text(body["messages"])
    text = f"{name}: {said}"
    content: list[Body] = []
    if (body.get("thinking") or {}).get("type") == "enabled":
        thought = "Let me think this over."
        content.append({"type": "thinking", "thinking": thought, "signature": "c2ln"})
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    stop_reason, stop_sequence = "end_turn", None
    forced = choice["type"] in ("any", "tool")
    if tools and choice["type"] != "none" and (forced or "[tool]" in said):
        tool = choice.get("name") or tools[0]["name"]
        content.append({"type": "text", "text": f"I will call {tool}."})
        call = {"type": "tool_use", "id": "toolu_fake1", "name": tool, "input": {"query": said}}
        content.append(call)
        stop_reason = "tool_use"
    else:
        for sequence in body.get("stop_sequences") or []:
            if sequence in text:
                text, stop_sequence = text.split(sequence)[0], sequence
                stop_reason = "stop_sequence"
                break
        if "[max]" in said:
            stop_reason = "max_tokens"
        content.append({"type": "text", "text": text})
    words = sum(
        len(str(b.get("text") or b.get("thinking") or b.get("input")).split()) for b in content
    )
    usage = {
        "input_tokens": len(orjson.dumps(body["messages"])) // 4,
        "output_tokens": words,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 7 if "[cached]" in said else 0,
    }
    return {
        "id": "msg_fake01",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


def _pieces(block: Body) -> tuple[Body, list[Body]]:
    """A block's content_block_start form and its deltas, as the API streams them."""
    kind = block["type"]
    if kind == "text":
        deltas = [{"type": "text_delta", "text": w} for w in _words(block["text"])]
        return {"type": "text", "text": ""}, deltas
    if kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": w} for w in _words(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
        return {"type": "thinking", "thinking": "", "signature": ""}, deltas
    raw = orjson.dumps(block["input"]).decode()
    third = max(1, len(raw) // 3)
    parts = ["", raw[:third], raw[third : 2 * third], raw[2 * third :]]
    deltas = [{"type": "input_json_delta", "partial_json": p} for p in parts]
    return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}, deltas


async def _stream(request: web.Request, message: Body, fault: Body) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)

    async def send(event: Body) -> None:
        head = f"event: {event['type']}\ndata: ".encode()
        await response.write(head + orjson.dumps(event) + b"\n\n")

    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    await send({"type": "message_start", "message": start})
    sent = 0
    for index, block in enumerate(message["content"]):
        opening, deltas = _pieces(block)
        await send({"type": "content_block_start", "index": index, "content_block": opening})
        if index == 0:
            await send({"type": "ping"})
        for delta in deltas:
            if "stream_error" in fault and sent == fault.get("after", 0):
                kind = fault["stream_error"]
                await send({"type": "error", "error": {"type": kind, "message": "Overloaded"}})
                return response
            await send({"type": "content_block_delta", "index": index, "delta": delta})
            sent += 1
            await asyncio.sleep(0)
        await send({"type": "content_block_stop", "index": index})
    if fault.get("truncate"):
        return response
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    usage = {"output_tokens": message["usage"]["output_tokens"]}
    await send({"type": "message_delta", "delta": delta, "usage": usage})
    await send({"type": "message_stop"})
    return response


async def messages(request: web.Request) -> web.StreamResponse:
    state, body = await record(request)
    refused = check(request, state, body)
    if refused is not None:
        return refused
    fault = next_fault(state)
    if "status" in fault:
        headers = {"retry-after": str(fault["retry_after"])} if "retry_after" in fault else None
        return error(fault["status"], f"injected fault {fault['status']}", headers)
    message = answer(state["name"], body)
    if body.get("stream"):
        return await _stream(request, message, fault)
    return json_response(message)


async def models(request: web.Request) -> web.Response:
    if request.headers.get("x-api-key") != request.app[STATE]["api_key"]:
        return error(401, "invalid x-api-key")
    model = {
        "type": "model",
        "id": "claude-test",
        "display_name": "Claude Test",
        "created_at": "2025-01-01T00:00:00Z",
    }
    listing = {"data": [model], "has_more": False, "first_id": "claude-test"}
    return json_response(listing)


def make_app(name: str, api_key: str) -> web.Application:
    app = new_app(name, api_key)
    app.router.add_post("/v1/messages", messages)
    app.router.add_get("/v1/models", models)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--name", default="claude")
    args = parser.parse_args()
    app = make_app(args.name, args.api_key)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
