"""Accepting clients under the ``server:`` limits of models.yaml.

aiohttp parses HTTP; this module bounds what a client may hold:

- ``max_connections``: connections served at once. The listener accepts only
  while below it; further clients wait in the kernel's backlog, as nginx's
  ``worker_connections`` makes them.
- ``header_timeout``: a request's line and headers must arrive within it,
  counted from the connection's opening (first request) or from the first
  byte of a later one; else 408 and the connection is closed (slow-header
  clients cannot hold connections). Idle gaps between requests are
  ``keepalive_timeout``'s, aiohttp's own.
- ``max_header_bytes``: a larger request line and headers get 431.

Every error written below the application (these, and aiohttp's own parse
errors) is OpenAI's JSON shape, never a text page.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from adapters.errors import (
    GatewayError,
    HeadersTooLargeError,
    InvalidRequestError,
    RequestTimeoutError,
)
from gateway.config.schema import ServerConfig

_PHRASES = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


def raw_error(error: GatewayError) -> bytes:
    """A whole HTTP response for ``error``, written straight to a socket."""
    body = error.to_json()
    head = (
        f"HTTP/1.1 {error.status} {_PHRASES.get(error.status, 'Bad Request')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class GatewayRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol, with the header bounds above."""

    def __init__(self, manager: web.Server, *, limits: ServerConfig, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = limits.header_timeout
        self._max_header_bytes = limits.max_header_bytes
        self._header_bytes = 0  # of the request whose headers are still arriving
        self._header_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the last request's body, while it arrives

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()  # the first request's headers are due

    def data_received(self, data: bytes) -> None:
        body = self._body
        if body is not None and not body.is_eof():  # more of a request's body
            super().data_received(data)
            return
        waiting = len(self._messages)
        super().data_received(data)
        if self._upgraded:  # a WebSocket: no more HTTP requests on it
            return
        if len(self._messages) > waiting:  # a request's headers are complete
            self._body = self._messages[-1][1]
            self._header_bytes = 0
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            return
        self._header_bytes += len(data)
        if self._header_bytes > self._max_header_bytes:
            self._refuse(
                HeadersTooLargeError(
                    f"The request line and headers are larger than the limit of "
                    f"{self._max_header_bytes} bytes."
                )
            )
        elif self._header_timer is None:
            self._arm()  # the rest of these headers are due

    def _arm(self) -> None:
        self._header_timer = self._loop.call_later(self._header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._current_request is not None or self._messages:
            return
        if self._header_bytes:
            late = f"The request's headers did not arrive within {self._header_timeout:g} s."
            self._refuse(RequestTimeoutError(late))
        else:  # nothing was sent: no request to answer, only a connection to drop
            self._refuse(None)

    def _refuse(self, error: GatewayError | None) -> None:
        transport = self.transport
        if error is not None and transport is not None and not transport.is_closing():
            transport.write(raw_error(error))  # closing the transport flushes it first
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's parse errors, in OpenAI's shape (never a traceback)."""
        if isinstance(exc, LineTooLong):
            error: GatewayError = HeadersTooLargeError(
                f"A request header is larger than the limit of {self._max_header_bytes} bytes."
            )
        elif status < 500:
            reason = getattr(exc, "message", None) or message or "malformed HTTP request"
            error = InvalidRequestError(f"Bad request: {reason}.", code="bad_http_request")
            error.status = status
        else:
            error = GatewayError("The server had an error while processing your request.")
        response = web.Response(
            status=error.status, body=error.to_json(), content_type="application/json"
        )
        response.force_close()
        return response


class GatewayServer(web.Server):
    """aiohttp's protocol factory, making ``GatewayRequestHandler``s and
    telling the listener when a connection has gone."""

    def __init__(self, *args: Any, limits: ServerConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.room = asyncio.Event()  # set when a connection closes

    def __call__(self) -> RequestHandler:
        return GatewayRequestHandler(self, loop=self._loop, limits=self.limits, **self._kwargs)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self.room.set()


class GatewayRunner(web.AppRunner):
    """An AppRunner whose server is a ``GatewayServer``."""

    def __init__(self, app: web.Application, limits: ServerConfig, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits

    async def _make_server(self) -> web.Server:
        app = self.app
        loop = asyncio.get_running_loop()
        app._set_loop(loop)
        app.on_startup.freeze()
        await app.startup()
        app.freeze()
        # What Application._make_handler builds, with the gateway's server class.
        return GatewayServer(
            app._handle,
            request_factory=app._make_request,
            loop=loop,
            limits=self._limits,
            debug=False,
            **self._kwargs,
        )


class Listener:
    """Accepts connections on ``sock`` while fewer than ``max_connections``
    are open (TLS handshakes under way included); stops on ``close``."""

    def __init__(
        self, sock: socket.socket, server: GatewayServer, tls: ssl.SSLContext | None
    ) -> None:
        self._sock = sock
        self._server = server
        self._tls = tls
        self._opening = 0
        self._task: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._accept_forever())

    async def _accept_forever(self) -> None:
        loop = asyncio.get_running_loop()
        server, limit = self._server, self._server.limits.max_connections
        while True:
            while len(server.connections) + self._opening >= limit:
                server.room.clear()
                await server.room.wait()
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError:  # e.g. EMFILE: the client stays in the backlog a moment
                await asyncio.sleep(0.1)
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._opening += 1
            task = loop.create_task(self._open(conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _open(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                self._server,
                conn,
                ssl=self._tls,
                ssl_handshake_timeout=self._server.limits.header_timeout if self._tls else None,
            )
        except (OSError, TimeoutError, ssl.SSLError):
            conn.close()  # a failed TLS handshake: nothing to answer
        finally:
            self._opening -= 1

    async def close(self) -> None:
        """Stop accepting: this process's listening socket is closed, so a new
        client is refused at once (other workers keep theirs)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._handshakes):
            task.cancel()
        self._sock.close()
