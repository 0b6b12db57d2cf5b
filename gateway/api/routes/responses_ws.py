"""WebSocket mode of the Responses API: ``GET /v1/responses`` upgraded.

Authentication is the handshake's (the ``Authorization`` header, checked by
the auth middleware before the upgrade). The client sends ``response.create``
events (the create body, without ``stream``); the server answers each with the
events an SSE stream would carry, in order, one turn at a time. An error is an
``error`` event (with the HTTP ``status`` it would have had) and the socket
stays usable. ``previous_response_id`` finds the connection's own responses
first, so ``store: false`` chains work on the socket (kept in its memory, up
to ``CONNECTION_RESPONSES``), then the shared store.

Each turn is a request of its own to the access log, metrics and tracing
(method ``WS``, path ``/v1/responses``); the upgrade itself is not traffic.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from pydantic import ValidationError

from adapters.errors import GatewayError, InvalidRequestError
from gateway.api.exchange import Exchange
from gateway.api.responses_protocol import ResponseCreateEvent, wire_validation_error
from gateway.api.routes.responses import admit, call_of, caller
from gateway.api.state import RECORD, STATE
from gateway.observability.logs import AccessRecord
from gateway.responses import output
from gateway.responses.relay import ResponsesRelay
from gateway.responses.store import MemoryStore

Body = dict[str, Any]


class SocketSink:
    """Events as text frames, each echoing the turn's ``stream_id`` (its lane)."""

    def __init__(self, socket: web.WebSocketResponse, stream_id: str | None) -> None:
        self.socket = socket
        self.stream_id = stream_id

    async def send(self, events: list[Body]) -> None:
        for event in events:
            if self.stream_id is not None:
                event["stream_id"] = self.stream_id
            await self.socket.send_frame(orjson.dumps(event), WSMsgType.TEXT)

    async def end(self, events: list[Body]) -> None:
        await self.send(events)


async def responses_socket(request: web.Request) -> web.StreamResponse:
    socket = web.WebSocketResponse(max_msg_size=request.app[STATE].config.server.max_body_bytes)
    if not socket.can_prepare(request).ok:
        error = InvalidRequestError(
            "GET /v1/responses is the Responses API's WebSocket mode: connect with a "
            "WebSocket handshake (Upgrade: websocket).",
            code="websocket_required",
        )
        error.status = 405
        raise error
    await socket.prepare(request)
    drain = request.app[STATE].drain
    drain.keep_socket(socket)  # a drain closes it at once (1001) rather than wait on it
    local = request.app[STATE].responses.connection_store()
    turns = 0
    try:
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                await _error(socket, None, _text_only())
                continue
            turns += 1
            if not await _turn(request, socket, message.data, local, turns):
                break
    finally:
        drain.drop_socket(socket)
        await local.aclose()
    return socket


async def _turn(
    request: web.Request, socket: web.WebSocketResponse, data: str, local: MemoryStore, n: int
) -> bool:
    """One ``response.create``; False when the client went away."""
    state = request.app[STATE]
    connection = request[RECORD]
    record = AccessRecord(f"{connection.request_id}.{n}", "WS", request.path, time.perf_counter())
    record.key_name = connection.key_name
    record.data_retention = connection.data_retention
    span = state.telemetry.start(record, request.headers)
    stream_id: str | None = None
    try:
        body = _event(data)
        stream_id = body.get("stream_id") if isinstance(body.get("stream_id"), str) else None
        record.model = body["model"]
        record.request_body = body
        await _respond(request, socket, body, local, record, stream_id)
        record.status = 200
    except GatewayError as exc:
        record.error_type = exc.type
        record.status = exc.status
        await _error(socket, stream_id, exc)
    except ConnectionResetError:
        record.status = 499  # the client went away mid-turn
        return False
    except asyncio.CancelledError:
        record.status = 499
        raise
    except Exception:
        # A bug must cost one turn, not the socket (and never show a traceback).
        state.log.exception("unhandled error", request_id=record.request_id, path=request.path)
        error = GatewayError("The server had an error while processing your request.")
        record.error_type = error.type
        record.status = error.status
        await _error(socket, stream_id, error)
    finally:
        state.access_log.write(record)
        state.telemetry.finish(record, span)
    return True


def _event(data: str) -> Body:
    """A client event: only ``response.create``, validated as the create body."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The event is not valid JSON ({exc.msg}).") from exc
    if not isinstance(body, dict) or body.get("type") != "response.create":
        kind = body.get("type") if isinstance(body, dict) else None
        raise InvalidRequestError(
            f"Unsupported event type {kind!r}: this gateway's WebSocket mode takes "
            "'response.create' events.",
            param="type",
            code="invalid_value",
        )
    try:
        ResponseCreateEvent.model_validate(body)
    except ValidationError as exc:
        raise wire_validation_error(exc) from exc
    body["stream"] = True  # implicit on a socket
    return dict(body)


async def _respond(
    request: web.Request,
    socket: web.WebSocketResponse,
    body: Body,
    local: MemoryStore,
    record: AccessRecord,
    stream_id: str | None,
) -> None:
    state = request.app[STATE]
    service = state.responses.responses
    turn = await service.prepare(state.router, body, caller(request), local)
    sink = SocketSink(socket, stream_id)
    async with admit(request, turn) as grant:
        # Guardrails see the chat completion the backend would get, as over HTTP.
        exchange = await Exchange.guard_only(request, body["model"], turn.chat, record)
        if body.get("generate") is False:
            stream = turn.stream()  # state prepared, nothing generated
            events = stream.start()
            turn.response = stream.complete(output.usage(None))
            await service.save(turn)
            await sink.end([*events, stream.terminal()])
            return
        first, chunks, target = await state.router.open_stream(turn.model, call_of(request, turn))
        first, chunks = exchange.guarded(first, chunks)
        async with aclosing(chunks):
            record.target = target.name
            record.ttft = time.perf_counter() - record.started
            relay = ResponsesRelay(turn, service, record, state.tokens)
            try:
                await relay.run(sink, first, chunks, state.drain.ended_error)
            finally:
                grant.record_stream(relay.usage, relay.texts)


async def _error(socket: web.WebSocketResponse, stream_id: str | None, exc: GatewayError) -> None:
    event: Body = {"type": "error", "status": exc.status, **exc.to_dict()}
    if stream_id is not None:
        event["stream_id"] = stream_id
    await socket.send_frame(orjson.dumps(event), WSMsgType.TEXT)


def _text_only() -> InvalidRequestError:
    return InvalidRequestError("Send events as text frames of JSON.", code="invalid_value")


def add_websocket_routes(app: web.Application) -> None:
    app.router.add_get("/v1/responses", responses_socket)
