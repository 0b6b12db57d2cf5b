"""The lean transport: the gateway's own HTTP/1.1 keep-alive client.

Profiling the gateway at saturation put aiohttp's ``ClientSession._request``
at over a quarter of all CPU: per call it builds request and response objects,
header multidicts, timer handles and tracing hooks the gateway never uses.
This client does what an upstream call needs and no more: a pool of
keep-alive connections per origin, one prebuilt request head per method and
URL, and httptools to parse the answer (``adapters.transport.lean_connection``).
It keeps every rule of ``adapters.transport.base``; the ones that decide
whether a request may be sent again are in ``Pool.exchange``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from contextlib import nullcontext
from typing import Any
from urllib.parse import urlsplit

from adapters.config import Timeouts
from adapters.errors import GatewayError, UpstreamError, UpstreamUnavailableError
from adapters.transport.base import REQUEST_HEADERS, Response, exchange_limit
from adapters.transport.errors import transport_error
from adapters.transport.lean_connection import Answer, Connection, LeanStream, Request
from adapters.transport.settings import Origin, Proxy, TransportSettings

_MAX_PROXY_ANSWER = 64 * 1024
# A request is one bytes object up to this size (one write); a larger body is
# written beside its head rather than copied into one object with it.
_COPY_LIMIT = 64 * 1024


class LeanTransport:
    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings
        self._pools: dict[str, Pool] = {}
        self._ssl: ssl.SSLContext | None = None

    def _pool(self, url: str) -> Pool:
        key = url[: url.find("/", url.find("//") + 2)]  # scheme://authority, cheaply
        pool = self._pools.get(key)
        if pool is None:
            origin = Origin.of(url)
            if origin.scheme == "https" and self._ssl is None:
                self._ssl = self.settings.ssl_context()
            context = self._ssl if origin.scheme == "https" else None
            pool = self._pools[key] = Pool(origin, self.settings, context)
        return pool

    async def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        timeouts: Timeouts,
        deadline: float | None = None,
    ) -> Response:
        pool = self._pool(url)
        request = pool.request_bytes(method, url, body)
        loop = asyncio.get_running_loop()
        limit = exchange_limit(timeouts, loop.time(), deadline)
        guard = asyncio.timeout_at(limit) if limit is not None else nullcontext()
        try:
            async with guard:
                status, raw_headers, raw, _ = await pool.exchange(request, timeouts.connect)
        except TimeoutError as exc:
            raise transport_error(exc, self.settings.what, sent=True) from exc
        return Response(status, raw_headers, raw)

    async def stream(
        self, method: str, url: str, body: bytes | None, timeouts: Timeouts
    ) -> LeanStream:
        pool = self._pool(url)
        return await pool.stream(pool.request_bytes(method, url, body), timeouts)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()


class Pool:
    """Keep-alive connections to one origin (directly, or through a proxy)."""

    def __init__(
        self, origin: Origin, settings: TransportSettings, context: ssl.SSLContext | None
    ) -> None:
        self.origin = origin
        self.settings = settings
        self.what = settings.what
        self.ssl = context
        self.proxy = settings.proxy_for(origin)
        # A plain-http upstream behind a proxy is asked for in absolute form.
        self._absolute = self.proxy is not None and origin.scheme == "http"
        fixed = [f"Host: {origin.authority}"]
        fixed += [f"{name}: {value}" for name, value in settings.headers.items()]
        if self._absolute and self.proxy is not None and self.proxy.authorization:
            fixed.append(f"Proxy-Authorization: {self.proxy.authorization}")
        self._fixed = ("\r\n".join(fixed) + "\r\n").encode("latin-1")
        self._heads: dict[tuple[str, str], bytes] = {}
        self._idle: deque[Connection] = deque()
        self._size = 0
        self._max = settings.max_connections
        self._freed: asyncio.Event | None = None

    def request_bytes(self, method: str, url: str, body: bytes | None) -> Request:
        head = self._heads.get((method, url))
        if head is None:
            head = self._heads[(method, url)] = self._head(method, url)
        extra = REQUEST_HEADERS.get()
        if extra:  # per-request headers (trace context): rare, so not cached
            head += "".join(f"{k}: {v}\r\n" for k, v in extra.items()).encode("latin-1")
        if body is None:
            return head + b"\r\n"
        if len(body) > _COPY_LIMIT:  # written as it is: copying it costs milliseconds
            return (
                head,
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body),
                body,
            )
        return b"%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            head,
            len(body),
            body,
        )

    def _head(self, method: str, url: str) -> bytes:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if self._absolute:
            target = f"http://{self.origin.authority}{target}"
        return f"{method} {target} HTTP/1.1\r\n".encode("latin-1") + self._fixed

    # -- exchanges ----------------------------------------------------------

    async def exchange(self, request: Request, connect_timeout: float | None) -> Answer:
        """Send one request and read its whole answer.

        A request goes out once. Only a connection found closed before the
        write is passed over for another: after the write, a failure is the
        caller's failed attempt, whatever the upstream made of the request."""
        while True:
            connection = await self._acquire(connect_timeout)
            if not connection.writable():
                self._discard(connection)
                continue
            try:
                answer = await connection.send(request)
            except BaseException as exc:
                self._discard(connection)  # cancelled or failed mid-exchange: never reused
                if isinstance(exc, Exception):
                    raise transport_error(exc, self.what, sent=True) from exc
                raise
            if answer[3] and connection.writable():
                self._release(connection, answer[1])
            else:
                self._discard(connection)
            return answer

    async def stream(self, request: Request, timeouts: Timeouts) -> LeanStream:
        """Send a request whose answer is read as it arrives; returns once headers are in."""
        while True:
            connection = await self._acquire(timeouts.connect)
            if not connection.writable():
                self._discard(connection)
                continue
            response = LeanStream(connection, timeouts.idle, self._settle)
            try:
                connection.send_streamed(request, response)
                await response.wait_headers()
            except BaseException as exc:
                response.close()
                if isinstance(exc, GatewayError | OSError):
                    raise transport_error(exc, self.what, sent=True) from exc
                raise
            return response

    # -- the pool -----------------------------------------------------------

    async def _acquire(self, connect_timeout: float | None) -> Connection:
        idle = self._idle
        if idle:
            now = asyncio.get_running_loop().time()
            while idle and idle[0].idle_until <= now:  # the oldest first: expired ones go
                self._discard(idle.popleft())
            while idle:
                connection = idle.pop()  # the most recently used: its socket is warm
                if connection.idle_until > now:
                    return connection
                self._discard(connection)
        while self._size >= self._max:
            if self._freed is None:
                self._freed = asyncio.Event()
            self._freed.clear()
            await self._freed.wait()
            if self._idle:
                return await self._acquire(connect_timeout)
        self._size += 1
        try:
            guard = asyncio.timeout(connect_timeout) if connect_timeout else nullcontext()
            async with guard:
                return await self._connect()
        except BaseException as exc:
            self._size -= 1
            if isinstance(exc, Exception):
                raise transport_error(exc, self.what, sent=False) from exc
            raise

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        origin, proxy = self.origin, self.proxy

        def factory() -> Connection:
            return Connection(self.what, self.settings.max_response_bytes)

        connection: Any
        if proxy is None:
            hostname = origin.host if self.ssl is not None else None
            _, connection = await loop.create_connection(
                factory, origin.host, origin.port, ssl=self.ssl, server_hostname=hostname
            )
        elif origin.scheme == "http":
            _, connection = await loop.create_connection(factory, proxy.host, proxy.port)
        else:
            sock = await _tunnel(proxy, origin, self.what)
            try:
                _, connection = await loop.create_connection(
                    factory, sock=sock, ssl=self.ssl, server_hostname=origin.host
                )
            except BaseException:
                sock.close()
                raise
        return connection

    def _release(self, connection: Connection, raw_headers: Any = ()) -> None:
        connection.idle_until = asyncio.get_running_loop().time() + self._expiry(raw_headers)
        self._idle.append(connection)
        if self._freed is not None:
            self._freed.set()

    def _expiry(self, raw_headers: Any) -> float:
        """Our keep-alive expiry, or the upstream's own (``Keep-Alive:
        timeout=N``) less a margin, whichever ends first."""
        expiry = self.settings.keepalive_expiry
        for name, value in raw_headers:
            if name.lower() == b"keep-alive":
                for part in value.split(b","):
                    key, _, number = part.strip().partition(b"=")
                    if key.lower() == b"timeout" and number.strip().isdigit():
                        expiry = min(expiry, max(0.0, int(number) - 0.5))
        return expiry

    def _settle(self, connection: Connection, reusable: bool) -> None:
        """A stream is done with its connection (see ``LeanStream``)."""
        if reusable:
            self._release(connection, connection.headers)
        else:
            self._discard(connection)

    def _discard(self, connection: Connection) -> None:
        connection.close()
        self._size -= 1
        if self._freed is not None:
            self._freed.set()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
        self._size = 0


async def _tunnel(proxy: Proxy, origin: Origin, what: str) -> socket.socket:
    """A socket to ``origin`` through ``proxy``'s CONNECT, ready for TLS."""
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for family, kind, protocol, _, address in await loop.getaddrinfo(
        proxy.host, proxy.port, type=socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, protocol)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        try:
            await _ask_tunnel(loop, sock, proxy, origin, what)
        except BaseException:
            sock.close()
            raise
        return sock
    raise last or OSError(f"cannot resolve the proxy {proxy.host}")


async def _ask_tunnel(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, proxy: Proxy, origin: Origin, what: str
) -> None:
    lines = [f"CONNECT {origin.authority} HTTP/1.1", f"Host: {origin.authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    answer = b""
    while b"\r\n\r\n" not in answer:
        piece = await loop.sock_recv(sock, 4096)
        if not piece or len(answer) > _MAX_PROXY_ANSWER:
            raise UpstreamError(f"{what}: the proxy closed the tunnel before answering")
        answer += piece
    status_line = answer.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
    if status != 200:
        raise UpstreamUnavailableError(f"{what}: the proxy refused the tunnel (HTTP {status})")
