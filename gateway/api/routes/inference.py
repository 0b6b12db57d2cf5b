"""The OpenAI inference endpoints: chat and text completions (streaming and
not) and embeddings. Each parses, is admitted by access control, runs its
guardrails and cache lookup (``gateway.api.exchange``), calls the router (or
answers from the cache), and serializes."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from typing import Any

import orjson
from aiohttp import web

from gateway.access.control import FreeGrant, Grant
from gateway.api.exchange import Exchange
from gateway.api.parsing import LARGE_BODY_BYTES, read_request
from gateway.api.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from gateway.api.relay import SSE_HEADERS, Batch, StreamRelay, finish_result
from gateway.api.state import RECORD, STATE
from gateway.routing.model import Call, Operation
from gateway.routing.streams import BatchStream

JSON = "application/json"
CACHE_TARGET = "cache"  # X-Gateway-Target of an answer from the cache


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
        model = state.router.resolve(parsed.model)
        exchange = await Exchange.open(request, operation, parsed.model, body)
        if parsed.stream:
            return await _stream(request, operation, parsed, body, grant, exchange)
        if exchange.hit:
            result, target = exchange.cached_result(), CACHE_TARGET
            record.tokens_saved = (result.get("usage") or {}).get("total_tokens")
        else:
            result, upstream = await state.router.call(model, _call(request, operation, body))
            target = upstream.name
            result = finish_result(result, parsed.model, body, state.tokens)
            grant.record_usage(result.get("usage"))
            result = await exchange.finish_result(result)
        record.target = target
        record.completion = result
        usage = result.get("usage") or {}
        record.prompt_tokens = usage.get("prompt_tokens")
        record.completion_tokens = usage.get("completion_tokens")
        return web.Response(
            body=orjson.dumps(result),
            content_type=JSON,
            headers={
                **grant.headers,
                **exchange.headers(),
                "X-Request-ID": record.request_id,
                "X-Gateway-Target": target,
            },
        )


async def _stream(
    request: web.Request,
    operation: Operation,
    parsed: ChatCompletionRequest | CompletionRequest,
    body: dict[str, Any],
    grant: Grant | FreeGrant,
    exchange: Exchange,
) -> web.StreamResponse:
    """Stream the answer (or replay it from the cache); its usage goes to the grant."""
    state = request.app[STATE]
    record = request[RECORD]
    include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
    first: Batch
    chunks: BatchStream
    if exchange.hit:
        first, chunks, filters = exchange.replay()
        target = CACHE_TARGET
    else:
        # Always ask the backend for usage so accounting never has to guess;
        # the relay drops it again when the client did not ask.
        options = {**(body.get("stream_options") or {}), "include_usage": True}
        call = _call(request, operation, {**body, "stream_options": options})
        model = state.router.resolve(parsed.model)
        first, chunks, upstream = await state.router.open_stream(model, call)
        target, filters = upstream.name, exchange.stream_filters()
    async with aclosing(chunks):
        record.target = target
        record.ttft = time.perf_counter() - record.started
        response = web.StreamResponse(
            headers={
                **SSE_HEADERS,
                **grant.headers,
                **exchange.headers(),
                "X-Request-ID": record.request_id,
                "X-Gateway-Target": target,
            }
        )
        await response.prepare(request)
        relay = StreamRelay(
            parsed.model, body, include_usage, record, state.tokens, state.drain, filters
        )
        try:
            await relay.run(response, first, chunks)
        finally:
            if exchange.hit:
                record.tokens_saved = (relay.usage or {}).get("total_tokens")
            else:
                grant.record_stream(relay.usage, relay.texts)
        await exchange.finish_stream(relay)
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
        exchange = await Exchange.open(request, "embeddings", parsed.model, body)
        if exchange.hit:
            result, target = exchange.cached_result(), CACHE_TARGET
            record.tokens_saved = (result.get("usage") or {}).get("total_tokens")
        else:
            result, upstream = await state.router.call(model, _call(request, "embeddings", body))
            target = upstream.name
            result["model"] = parsed.model
            usage = result.get("usage")
            if not isinstance(usage, dict):
                prompt = state.tokens.count_prompt(body["input"])
                result["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
            grant.record_usage(result["usage"])
            result = await exchange.finish_result(result)
        record.target = target
    record.prompt_tokens = result["usage"].get("prompt_tokens")
    return web.Response(
        body=orjson.dumps(result),
        content_type=JSON,
        headers={
            **grant.headers,
            **exchange.headers(),
            "X-Request-ID": record.request_id,
            "X-Gateway-Target": target,
        },
    )


def add_inference_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
