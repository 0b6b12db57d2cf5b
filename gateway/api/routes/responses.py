"""The Responses API over HTTP: ``POST /v1/responses`` (streaming and not),
``GET``/``DELETE /v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``.

A create request is prepared by the Responses service (history rebuilt, chat
body built, fitted to the window), admitted by access control on the chat
body (so limits count the whole rebuilt conversation), sent through the
router, and turned back into a Response (or its stream of events).
"""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from adapters.errors import InvalidRequestError
from gateway.access.auth import PRINCIPAL
from gateway.access.control import FreeGrant, Grant
from gateway.api.exchange import Exchange
from gateway.api.parsing import read_request
from gateway.api.relay import SSE_HEADERS, finish_result
from gateway.api.responses_protocol import ListQuery, ResponseCreateRequest, wire_validation_error
from gateway.api.state import RECORD, STATE
from gateway.observability.logs import AccessRecord
from gateway.responses.relay import ResponsesRelay
from gateway.responses.service import Caller, Turn
from gateway.routing.model import Call

Body = dict[str, Any]
JSON = "application/json"
# Access rules name chat fields; a Responses client sent these.
_RESPONSES_PARAMS = {
    "messages": "input",
    "max_completion_tokens": "max_output_tokens",
    "max_tokens": "max_output_tokens",
}


class ChatAdmission(BaseModel):
    """What access control reads of a turn's chat body (the model, the messages,
    and that max_tokens caps apply): built with ``model_construct``, not validated."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None


def caller(request: web.Request) -> Caller:
    return Caller.of(request[PRINCIPAL])


def admit(request: web.Request, turn: Turn) -> Grant | FreeGrant:
    """Access control on the turn's chat body; its errors name Responses fields."""
    view = ChatAdmission.model_construct(model=turn.body["model"], messages=turn.chat["messages"])
    try:
        return request.app[STATE].access.admit(request, view, turn.chat)
    except InvalidRequestError as exc:
        renamed = _RESPONSES_PARAMS.get(exc.param or "")
        if renamed is not None:
            exc.message = exc.message.replace(f"'{exc.param}'", f"'{renamed}'")
            exc.param = renamed
        raise


def call_of(request: web.Request, turn: Turn) -> Call:
    """The router's call; one conversation keeps to one target (its prefix cache)."""
    user = turn.body.get("user")
    session = (
        request.headers.get("X-Session-ID")
        or turn.session_key
        or (user if isinstance(user, str) else None)
    )
    return Call("chat", turn.chat, session_key=session)


def json_response(
    payload: Body, request: web.Request, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        content_type=JSON,
        headers={**(headers or {}), "X-Request-ID": request[RECORD].request_id},
    )


async def create_response(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    record = request[RECORD]
    body, parsed = await read_request(request, ResponseCreateRequest, wire_validation_error)
    record.model = parsed.model
    record.request_body = body
    turn = await state.responses.responses.prepare(state.router, body, caller(request))
    async with admit(request, turn) as grant:
        # Guardrails see the chat completion the backend will get.
        exchange = await Exchange.guard_only(request, parsed.model, turn.chat)
        if parsed.stream:
            return await _stream(request, turn, grant, exchange)
        return await _respond(request, turn, grant, exchange)


async def _respond(
    request: web.Request, turn: Turn, grant: Grant | FreeGrant, exchange: Exchange
) -> web.Response:
    state = request.app[STATE]
    record = request[RECORD]
    result, target = await state.router.call(turn.model, call_of(request, turn))
    record.target = target.name
    result = finish_result(result, turn.body["model"], turn.chat, state.tokens)
    result = await exchange.finish_result(result)
    record.completion = result
    usage = result["usage"]
    grant.record_usage(usage)
    record.prompt_tokens = usage.get("prompt_tokens")
    record.completion_tokens = usage.get("completion_tokens")
    response = state.responses.responses.respond(turn, result)
    await state.responses.responses.save(turn)
    headers = {**grant.headers, "X-Gateway-Target": target.name}
    return json_response(response, request, headers)


class SseSink:
    """Responses events as SSE, framed as OpenAI frames them (``event:`` then ``data:``)."""

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response

    @staticmethod
    def encode(events: list[Body]) -> bytes:
        return b"".join(
            b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
            for event in events
        )

    async def send(self, events: list[Body]) -> None:
        await self.response.write(self.encode(events))

    async def end(self, events: list[Body]) -> None:
        await self.response.write_eof(self.encode(events))


async def _stream(
    request: web.Request, turn: Turn, grant: Grant | FreeGrant, exchange: Exchange
) -> web.StreamResponse:
    state = request.app[STATE]
    record: AccessRecord = request[RECORD]
    first, chunks, target = await state.router.open_stream(turn.model, call_of(request, turn))
    first, chunks = exchange.guarded(first, chunks)
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
        relay = ResponsesRelay(turn, state.responses.responses, record, state.tokens)
        try:
            await relay.run(SseSink(response), first, chunks, state.drain.ended_error)
        finally:
            grant.record_stream(relay.usage, relay.texts)
    return response


async def retrieve_response(request: web.Request) -> web.Response:
    service = request.app[STATE].responses.responses
    found = await service.retrieve(caller(request), request.match_info["response_id"])
    return json_response(found, request)


async def delete_response(request: web.Request) -> web.Response:
    service = request.app[STATE].responses.responses
    deleted = await service.delete(caller(request), request.match_info["response_id"])
    return json_response(deleted, request)


def list_query(request: web.Request) -> ListQuery:
    """``after``, ``limit`` and ``order`` from the query string (400 naming a bad one)."""
    try:
        return ListQuery.model_validate(
            {k: request.query[k] for k in ("after", "limit", "order") if k in request.query}
        )
    except ValidationError as exc:
        raise wire_validation_error(exc) from exc


async def list_input_items(request: web.Request) -> web.Response:
    service = request.app[STATE].responses.responses
    query = list_query(request)
    listed = await service.input_items(
        caller(request), request.match_info["response_id"], query.after, query.limit, query.order
    )
    return json_response(listed, request)


def add_responses_routes(app: web.Application) -> None:
    app.router.add_post("/v1/responses", create_response)
    app.router.add_get("/v1/responses/{response_id}", retrieve_response)
    app.router.add_delete("/v1/responses/{response_id}", delete_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", list_input_items)
