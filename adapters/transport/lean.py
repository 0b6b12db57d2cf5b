"""A lean HTTP/1.1 keep-alive client for the non-streaming request path.

Profiling the gateway at saturation put aiohttp's ``ClientSession._request``
at over a quarter of all CPU: per call it builds request and response objects,
header multidicts, timer handles and tracing hooks the gateway never uses.
This client does only what a JSON POST to an upstream needs: a pooled
connection per request, one prebuilt header block per URL, and httptools to
parse the answer, whole (``FastPool.post``) or as a stream handed to the SSE
decoders as it arrives (``FastPool.stream``).
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from urllib.parse import urlsplit

import httptools
from multidict import CIMultiDict

from adapters.errors import UpstreamError, UpstreamTimeoutError, UpstreamUnavailableError

RawHeaders = list[tuple[bytes, bytes]]


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes, bool]] | None
        self.waiter = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.received = False
        self.open = False
        # Set while a streamed answer is being read.
        self.stream: StreamedResponse | None = None

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.open = True

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed HTTP response ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.stream is not None:
            self.stream.failed(UpstreamError("the upstream closed the connection mid-stream"))
        self._fail(ConnectionResetError("the upstream closed the connection"))

    # -- httptools callbacks --------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.stream is not None:
            self.stream.started(self.parser.get_status_code(), self.headers)

    def on_body(self, body: bytes) -> None:
        if self.stream is not None:
            self.stream.fed(body)
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.stream is not None:
            self.stream.ended(self.parser.should_keep_alive())
            return
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            status = self.parser.get_status_code()
            keep = self.parser.should_keep_alive()
            waiter.set_result((status, self.headers, b"".join(self.body), keep))

    # -- requests -------------------------------------------------------------

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.transport is not None and self.open:
            self.transport.close()

    async def send(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        assert self.transport is not None
        self.headers, self.body, self.received = [], [], False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None and self.open:
            self.transport.close()
        self.open = False


class StreamedResponse:
    """A streamed answer: status and headers, then the body as it arrives.

    Reading pauses the socket when the unread body grows (a slow client
    slows the upstream instead of filling memory)."""

    HIGH_WATER = 256 * 1024

    def __init__(self, pool: FastPool, connection: _Connection, idle: float | None) -> None:
        self._pool = pool
        self._connection = connection
        self._idle = idle
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
        return headers(self.raw_headers)

    # -- fed by the connection ------------------------------------------------

    def started(self, status: int, raw_headers: RawHeaders) -> None:
        self.status, self.raw_headers = status, raw_headers
        self._wake()

    def fed(self, data: bytes) -> None:
        self._unread.append(data)
        self._unread_size += len(data)
        if self._unread_size > self.HIGH_WATER and not self._paused:
            self._paused = True
            assert self._connection.transport is not None
            self._connection.transport.pause_reading()
        self._wake()

    def ended(self, keep_alive: bool) -> None:
        self._eof, self._keep_alive = True, keep_alive
        if self._released:
            self._settle()
        self._wake()

    def failed(self, error: Exception) -> None:
        if self._released:
            self._settle()
        elif not self._eof:
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
            # One idle timer per stream, re-armed only when it fires early: a
            # wait costs a clock read, not a timer of its own.
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
            waiter.set_exception(TimeoutError("the upstream sent nothing for too long"))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- read by the decoders -------------------------------------------------

    async def wait_headers(self) -> None:
        while not self.status:
            await self._wait(None)

    async def read_some(self) -> bytes:
        """All of the body that has arrived unread (waiting for some); b"" at its end."""
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
        return _decoded(rest, self.raw_headers)

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
        if self._eof and self._keep_alive and connection.open:
            self._pool._release(connection)
        else:
            self._pool._discard(connection)

    def close(self) -> None:
        """Abandon the answer: closing the connection tells the upstream to stop."""
        self._stop_timer()
        if self._connection.stream is self:
            self._connection.stream = None
            self._pool._discard(self._connection)


class FastPool:
    """Keep-alive connections to one upstream (scheme, host and port of ``base_url``)."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], max_connections: int, what: str
    ) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        host_header = parts.netloc.rsplit("@", 1)[-1]
        fixed = [f"Host: {host_header}", "Content-Type: application/json"]
        fixed += [f"{name}: {value}" for name, value in headers.items()]
        self._fixed = ("\r\n".join(fixed) + "\r\n").encode("latin-1")
        self._prefixes: dict[str, bytes] = {}
        self._idle: deque[_Connection] = deque()
        self._size = 0
        self._max = max_connections
        self._freed: asyncio.Event | None = None
        self.what = what

    def _prefix(self, url: str) -> bytes:
        prefix = self._prefixes.get(url)
        if prefix is None:
            parts = urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            prefix = f"POST {target} HTTP/1.1\r\n".encode("latin-1") + self._fixed
            self._prefixes[url] = prefix
        return prefix

    async def post(
        self, url: str, body: bytes, connect_timeout: float | None
    ) -> tuple[int, RawHeaders, bytes]:
        """Status, raw headers and body of one POST (see ``headers`` to read them)."""
        request = b"%sContent-Length: %d\r\n\r\n%s" % (self._prefix(url), len(body), body)
        while True:
            connection, reused = await self._acquire(connect_timeout)
            try:
                status, raw_headers, raw, keep = await connection.send(request)
            except ConnectionResetError as exc:
                self._discard(connection)
                # An idle connection the upstream had already closed: it never
                # saw the request, so sending it again on a fresh one is safe.
                if reused and not connection.received:
                    continue
                raise UpstreamError(f"{self.what} closed the connection mid-response") from exc
            except BaseException:
                self._discard(connection)  # cancelled or failed mid-request: never reuse
                raise
            if keep and connection.open:
                self._release(connection)
            else:
                self._discard(connection)
            return status, raw_headers, _decoded(raw, raw_headers)

    async def stream(
        self, url: str, body: bytes, connect_timeout: float | None, idle: float | None
    ) -> StreamedResponse:
        """Send a POST whose answer is read as it arrives; returns once headers are in."""
        request = b"%sContent-Length: %d\r\n\r\n%s" % (self._prefix(url), len(body), body)
        while True:
            connection, reused = await self._acquire(connect_timeout)
            response = StreamedResponse(self, connection, idle)
            connection.stream = response
            try:
                assert connection.transport is not None
                connection.received = False
                connection.transport.write(request)
                await response.wait_headers()
                return response
            except UpstreamError:
                response.close()
                if reused and not connection.received:
                    continue  # a stale idle connection: it never saw the request
                raise
            except BaseException:
                response.close()
                raise

    async def _acquire(self, connect_timeout: float | None) -> tuple[_Connection, bool]:
        while self._idle:
            connection = self._idle.pop()
            if connection.open:
                return connection, True
            self._size -= 1
        while self._size >= self._max:
            if self._freed is None:
                self._freed = asyncio.Event()
            self._freed.clear()
            await self._freed.wait()
            if self._idle:
                return await self._acquire(connect_timeout)
        self._size += 1
        try:
            async with asyncio.timeout(connect_timeout):
                _, connection = await asyncio.get_running_loop().create_connection(
                    _Connection, self.host, self.port, ssl=self.ssl
                )
        except TimeoutError as exc:
            self._size -= 1
            raise UpstreamTimeoutError(f"{self.what} did not accept a connection in time") from exc
        except OSError as exc:
            self._size -= 1
            raise UpstreamUnavailableError(f"{self.what} is unreachable") from exc
        except BaseException:
            self._size -= 1
            raise
        return connection, False

    def _release(self, connection: _Connection) -> None:
        self._idle.append(connection)
        if self._freed is not None:
            self._freed.set()

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._size -= 1
        if self._freed is not None:
            self._freed.set()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
        self._size = 0


def headers(raw: RawHeaders) -> CIMultiDict[str]:
    """Response headers as aiohttp gives them (case-insensitive), for error mapping."""
    return CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


def _decoded(raw: bytes, raw_headers: RawHeaders) -> bytes:
    """The body, decompressed in the rare case an upstream compressed it unasked."""
    for name, value in raw_headers:
        if name.lower() == b"content-encoding" and value.lower() in (b"gzip", b"deflate"):
            return zlib.decompress(raw, wbits=47)  # 47: gzip or zlib header, detected
    return raw
