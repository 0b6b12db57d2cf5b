"""The OpenAI inference endpoints: chat and text completions (streaming and
not) and embeddings. Each parses, is admitted by access control, calls the
router, and serializes."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from typing import Any

import orjson
from aiohttp import web

from gateway.access.control import FreeGrant, Grant
from gateway.api.parsing import LARGE_BODY_BYTES, read_request
from gateway.api.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from gateway.api.relay import SSE_HEADERS, StreamRelay, finish_result
from gateway.api.state import RECORD, STATE
from gateway.routing.call import Call, Operation

JSON = "application/json"


def _call(request: web.Request, operation: Operation, body: dict[str, Any]) -> Call:
    user = body.get("user")
    session = request.headers.get("X-Session-ID") or (user if isinstance(user, str) else None)
    return Call(operation, body, session_key=session)


async def _generate(
    request: web.Request,
    operation: Operation,
    model_cls: type[ChatCompletionRequest] | type[CompletionRequest],
) -> web.StreamResponse:
    state = request.app[STATE]
    record = request[RECORD]
    body, parsed = await read_request(request, model_cls)
    record.model = parsed.model
    record.request_body = body
    async with state.access.admit(request, parsed, body) as grant:
        if (request.content_length or 0) > LARGE_BODY_BYTES:
            await asyncio.sleep(0)  # after counting its prompt, before sending it on
        return await _answer(request, operation, parsed, body, grant)


async def _answer(
    request: web.Request,
    operation: Operation,
    parsed: ChatCompletionRequest | CompletionRequest,
    body: dict[str, Any],
    grant: Grant | FreeGrant,
) -> web.StreamResponse:
    """Call the model for an admitted request; its usage goes to the grant."""
    state = request.app[STATE]
    record = request[RECORD]
    model = state.router.resolve(parsed.model)
    if not parsed.stream:
        result, target = await state.router.call(model, _call(request, operation, body))
        record.target = target.name
        result = finish_result(result, parsed.model, body, state.tokens)
        record.completion = result
        usage = result.get("usage") or {}
        grant.record_usage(usage)
        record.prompt_tokens = usage.get("prompt_tokens")
        record.completion_tokens = usage.get("completion_tokens")
        return web.Response(
            body=orjson.dumps(result),
            content_type=JSON,
            headers={
                **grant.headers,
                "X-Request-ID": record.request_id,
                "X-Gateway-Target": target.name,
            },
        )

    include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
    # Always ask the backend for usage so accounting never has to guess;
    # the relay drops it again when the client did not ask.
    options = {**(body.get("stream_options") or {}), "include_usage": True}
    call = _call(request, operation, {**body, "stream_options": options})
    first, chunks, target = await state.router.open_stream(model, call)
    async with aclosing(chunks):
        record.target = target.name
        record.ttft = time.perf_counter() - record.started
        response = web.StreamResponse(
            headers={
                **SSE_HEADERS,
                **grant.headers,
                "X-Request-ID": record.request_id,
                "X-Gateway-Target": target.name,
            }
        )
        await response.prepare(request)
        relay = StreamRelay(parsed.model, body, include_usage, record, state.tokens)
        try:
            await relay.run(response, first, chunks)
        finally:
            grant.record_stream(relay.usage, relay.texts)
    return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, "chat", ChatCompletionRequest)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, "completions", CompletionRequest)


async def embeddings(request: web.Request) -> web.Response:
    state = request.app[STATE]
    record = request[RECORD]
    body, parsed = await read_request(request, EmbeddingRequest)
    record.model = parsed.model
    record.request_body = body
    async with state.access.admit(request, parsed, body) as grant:
        model = state.router.resolve(parsed.model)
        result, target = await state.router.call(model, _call(request, "embeddings", body))
        record.target = target.name
        result["model"] = parsed.model
        usage = result.get("usage")
        if not isinstance(usage, dict):
            prompt = state.tokens.count_prompt(body["input"])
            result["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
        grant.record_usage(result["usage"])
    record.prompt_tokens = result["usage"].get("prompt_tokens")
    return web.Response(
        body=orjson.dumps(result),
        content_type=JSON,
        headers={
            **grant.headers,
            "X-Request-ID": record.request_id,
            "X-Gateway-Target": target.name,
        },
    )


def add_inference_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
