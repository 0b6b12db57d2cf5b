"""One keep-alive HTTP/1.1 connection of the lean client, parsed by httptools:
an ``asyncio.Protocol`` that answers one request at a time, whole
(``send``) or as a stream handed to a ``LeanStream`` as it arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import httptools
from multidict import CIMultiDict

from adapters.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from adapters.transport.base import RawHeaders, header_map
from adapters.transport.decoding import BodyDecoder

if TYPE_CHECKING:
    from collections.abc import Awaitable

Answer = tuple[int, RawHeaders, bytes, bool]  # status, headers, decoded body, keep-alive
Request = bytes | tuple[bytes, ...]  # one buffer, or pieces written one after another
_NO_BODY_STATUSES = frozenset({204, 304})


class Connection(asyncio.Protocol):
    """One connection; one exchange at a time. ``received`` tells whether any
    byte of an answer came back; ``open`` turns false as soon as the peer
    closes (or half-closes) it, so a closed idle connection is never written to."""

    def __init__(self, what: str, max_body: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.what = what
        self.max_body = max_body
        self.waiter: asyncio.Future[Answer] | None = None
        self.headers: RawHeaders = []
        self.body: list[bytes] = []
        self.decoder: BodyDecoder | None = None
        self.received = False
        self.open = False
        self.until_close = False  # the answer's body ends when the connection does
        self.headers_done = False
        self.complete = False
        self.idle_until = 0.0  # loop time after which an idle connection is not reused
        self.stream: LeanStream | None = None

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.open = True

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            # A callback refused the body (over its limit, or badly compressed).
            cause = exc.__context__
            self._fail(cause if isinstance(cause, GatewayError) else UpstreamError(str(exc)))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"{self.what} sent a malformed HTTP response ({exc})"))

    def eof_received(self) -> bool:
        self.open = False
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.until_close and self.headers_done and not self.complete:
            try:
                self.on_message_complete()  # the close is the end of this body
            except GatewayError as error:
                self._fail(error)
            return
        if self.stream is not None:
            self.stream.failed(UpstreamError(f"{self.what} closed the connection mid-stream"))
        self._fail(ConnectionResetError("the upstream closed the connection"))

    # -- httptools callbacks --------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        status = self.parser.get_status_code()
        framed = any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )
        self.until_close = not framed and status not in _NO_BODY_STATUSES and status >= 200
        self.decoder = BodyDecoder.for_headers(self.headers, self.max_body, self.what)
        if self.stream is not None:
            self.stream.started(status, self.headers)

    def on_body(self, body: bytes) -> None:
        decoder = self.decoder
        assert decoder is not None
        size = len(body)
        if decoder.identity and size <= decoder.room:
            decoder.room -= size  # the usual case, inline: this runs on every read
        else:
            body = decoder.feed(body)
        if self.stream is not None:
            self.stream.fed(body)
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        keep = self.parser.should_keep_alive() and not self.until_close
        if self.stream is not None:
            self.stream.ended(keep)
            return
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            tail = self.decoder.flush() if self.decoder is not None else b""
            body = b"".join(self.body) + tail
            waiter.set_result((self.parser.get_status_code(), self.headers, body, keep))

    # -- exchanges ------------------------------------------------------------

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.stream is not None and isinstance(error, GatewayError):
            self.stream.failed(error)
        self.close()

    def writable(self) -> bool:
        """Still open for a new request: the peer has not closed it."""
        transport = self.transport
        return self.open and transport is not None and not transport.is_closing()

    def _reset(self) -> None:
        self.headers, self.body, self.received = [], [], False
        self.decoder, self.until_close, self.complete = None, False, False
        self.headers_done = False

    def send(self, request: Request) -> Awaitable[Answer]:
        """Write ``request``; the whole answer once it is in."""
        self._reset()
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        self._write(request)
        return waiter

    def send_streamed(self, request: Request, stream: LeanStream) -> None:
        self._reset()
        self.stream = stream
        self._write(request)

    def _write(self, request: Request) -> None:
        assert self.transport is not None
        if isinstance(request, bytes):
            self.transport.write(request)
        else:
            self.transport.writelines(request)

    def close(self) -> None:
        if self.transport is not None and self.open:
            self.transport.close()
        self.open = False


class LeanStream:
    """A streamed answer: status and headers, then the decoded body as it arrives.

    Reading pauses the socket when the unread body grows (a slow client
    slows the upstream instead of filling memory). One idle timer per
    stream, re-armed lazily: a wait costs a clock read, not a timer."""

    HIGH_WATER = 256 * 1024

    def __init__(
        self,
        connection: Connection,
        idle: float | None,
        settle: Callable[[Connection, bool], None],
    ) -> None:
        self._connection = connection
        self._idle = idle
        self._settle_connection = settle  # gives the connection back (True) or drops it
        self._unread: list[bytes] = []
        self._unread_size = 0
        self._eof = False
        self._keep_alive = False
        self._error: Exception | None = None
        self._paused = False
        self._released = False
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._idle_until = 0.0
        self.status = 0
        self.raw_headers: RawHeaders = []

    @property
    def headers(self) -> CIMultiDict[str]:
        return header_map(self.raw_headers)

    # -- fed by the connection ------------------------------------------------

    def started(self, status: int, raw_headers: RawHeaders) -> None:
        self.status, self.raw_headers = status, raw_headers
        self._wake()

    def fed(self, data: bytes) -> None:
        """Decoded body bytes."""
        if not data:
            return
        self._unread.append(data)
        self._unread_size += len(data)
        if self._unread_size > self.HIGH_WATER and not self._paused:
            self._paused = True
            assert self._connection.transport is not None
            self._connection.transport.pause_reading()
        self._wake()

    def ended(self, keep_alive: bool) -> None:
        decoder = self._connection.decoder
        tail = decoder.flush() if decoder is not None else b""
        if tail:
            self._unread.append(tail)
        self._eof, self._keep_alive = True, keep_alive
        if self._released:
            self._settle()
        self._wake()

    def failed(self, error: Exception) -> None:
        if self._released:
            self._settle()
        elif not self._eof and self._error is None:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wait(self, limit: float | None) -> asyncio.Future[None]:
        """What to await for the next bytes (a plain future: no coroutine frame
        between the reader and the socket)."""
        if self._error is not None:
            raise self._error
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if limit is not None:
            self._idle_until = loop.time() + limit
            if self._timer is None:
                self._timer = loop.call_at(self._idle_until, self._idle_check)
        return waiter

    def _idle_check(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # no wait under way: the next one arms the timer again
        loop = waiter.get_loop()
        if loop.time() < self._idle_until:
            self._timer = loop.call_at(self._idle_until, self._idle_check)
        else:
            waiter.set_exception(
                UpstreamTimeoutError(f"{self._connection.what} sent nothing for {self._idle} s")
            )

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- read by the decoders -------------------------------------------------

    async def wait_headers(self) -> None:
        while not self.status:
            await self._wait(None)

    async def read_some(self) -> bytes:
        while not self._unread:
            if self._eof:
                return b""
            await self._wait(self._idle)
        unread = self._unread
        data = unread[0] if len(unread) == 1 else b"".join(unread)
        self._unread, self._unread_size = [], 0
        if self._paused:
            self._paused = False
            assert self._connection.transport is not None
            self._connection.transport.resume_reading()
        return data

    async def read(self) -> bytes:
        while not self._eof:
            await self._wait(self._idle)
        rest = b"".join(self._unread)
        self._unread, self._unread_size = [], 0
        return rest

    # -- the connection's fate ------------------------------------------------

    def release(self) -> None:
        """Done with the answer's events: the connection goes back to the pool
        once the message has ended (its last bytes may still be on the way)."""
        self._released = True
        self._stop_timer()
        if self._eof:
            self._settle()

    def _settle(self) -> None:
        connection = self._connection
        if connection.stream is not self:
            return
        connection.stream = None
        reusable = self._eof and self._keep_alive and connection.writable()
        self._settle_connection(connection, reusable)

    def close(self) -> None:
        self._stop_timer()
        if self._connection.stream is self:
            self._connection.stream = None
            self._settle_connection(self._connection, False)
