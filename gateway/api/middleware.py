"""The app's middlewares: the first gives every request its id, access record
and span, renders every error in OpenAI's shape and writes the access line;
the second authenticates ``/v1/`` requests before anything else is read."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from adapters.errors import GatewayError, InvalidRequestError, NotFoundError, PayloadTooLargeError
from gateway.access.auth import PRINCIPAL
from gateway.api.state import RECORD, STATE
from gateway.observability.logs import AccessRecord

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


class RequestIds:
    """Request ids: the client's own ``X-Request-ID`` when sane, else a random
    per-process prefix and a counter (unique across workers, and much cheaper
    than a uuid4 per request)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._next = itertools.count(1).__next__

    def __call__(self, request: web.Request) -> str:
        given = request.headers.get("X-Request-ID")
        if given and len(given) <= 128 and given.isprintable():
            return given
        return f"{self._prefix}{self._next():016x}"


def _http_exception_error(request: web.Request, exc: web.HTTPException) -> GatewayError:
    if isinstance(exc, web.HTTPNotFound):
        return NotFoundError(
            f"Unknown request URL: {request.method} {request.path}.", code="unknown_url"
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLargeError("Request body is larger than the configured limit.")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        error = InvalidRequestError(
            f"Method {request.method} is not allowed for {request.path}.",
            code="method_not_allowed",
        )
        error.status = 405
        return error
    error = InvalidRequestError(exc.reason or "Bad request.")
    error.status = exc.status
    return error


def error_response(exc: GatewayError, request_id: str) -> web.Response:
    return web.Response(
        status=exc.status,
        body=exc.to_json(),
        content_type="application/json",
        headers={**exc.headers, "X-Request-ID": request_id},
    )


def make_middleware(log: Any) -> Middleware:
    request_id = RequestIds()

    @web.middleware
    async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        record = AccessRecord(
            request_id(request), request.method, request.path, time.perf_counter()
        )
        request[RECORD] = record
        state = request.app[STATE]
        telemetry = state.telemetry
        span = telemetry.start(record, request.headers)
        drain = state.drain
        task = drain.enter()
        try:
            response = await handler(request)
        except GatewayError as exc:
            record.error_type = exc.type
            response = error_response(exc, record.request_id)
        except web.HTTPException as exc:
            error = _http_exception_error(request, exc)
            record.error_type = error.type
            response = error_response(error, record.request_id)
        except asyncio.CancelledError:
            if not drain.ending or request.writer.output_size:
                # The client went away, or a drained answer had begun (it ended itself).
                record.status = record.status or 499
                state.access_log.write(record)
                telemetry.finish(record, span)
                raise
            # Ended by the drain's deadline, before any response: a clean 503.
            if task is not None:
                task.uncancel()
            error = drain.error()
            record.error_type = error.type
            response = error_response(error, record.request_id)
        except Exception:
            log.exception("unhandled error", request_id=record.request_id, path=request.path)
            error = GatewayError("The server had an error while processing your request.")
            record.error_type = error.type
            response = error_response(error, record.request_id)
        finally:
            drain.exit(task)
        if not response.prepared:
            response.headers.setdefault("X-Request-ID", record.request_id)
            if drain.draining:
                response.force_close()  # the client reconnects, to another replica
        record.status = response.status
        state.access_log.write(record)
        telemetry.finish(record, span)
        return response

    return gateway_middleware


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is calling, before anything else is read (health probes stay open)."""
    if request.path.startswith("/v1/"):
        principal = request.app[STATE].access.authenticate(request.headers)
        request[PRINCIPAL] = principal
        record = request[RECORD]
        record.key_name = principal.name
        record.data_retention = principal.data_retention
    return await handler(request)
