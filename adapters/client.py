"""One provider's pooled HTTP client, shared by every adapter kind.

JSON calls and SSE streams run under the gateway's timeouts (connect, first
token, idle gap, total) and map failures onto ``gateway.errors``. What differs
per provider is passed in: how an HTTP error answer reads (``ErrorMapper``)
and how a stream body becomes OpenAI chunks (``Decoder``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import orjson

from adapters.fasthttp import FastPool, StreamedResponse
from adapters.fasthttp import headers as response_headers
from adapters.http import (
    client_timeout,
    make_session,
    parse_json_object,
    status_error,
    transport_errors,
)
from gateway.config import Timeouts
from gateway.errors import GatewayError, UpstreamTimeoutError

Body = dict[str, Any]
ErrorMapper = Callable[[int, bytes, Mapping[str, str]], GatewayError]
Decoder = Callable[[StreamedResponse], AsyncIterator[Body]]


async def iter_sse_data(response: StreamedResponse) -> AsyncIterator[bytes]:
    """The ``data`` of each complete SSE event, multi-line data joined, until the body ends.

    An event cut off by the end of the body is discarded, as the SSE spec says;
    callers detect a truncated stream by its missing final event.
    """
    content = response.content
    lines: list[bytes] = []
    while True:
        line = await content.readline()
        if not line:
            return
        line = line.rstrip(b"\r\n")
        if not line:
            if lines:
                yield b"\n".join(lines)
                lines = []
        elif line.startswith(b"data:"):
            data = line[5:]
            lines.append(data[1:] if data.startswith(b" ") else data)


class FailedStream:
    """A stream that fails at its first ``anext``, where the router handles
    every stream failure (and releases what it acquired for the attempt)."""

    def __init__(self, error: GatewayError) -> None:
        self._error = error

    def __aiter__(self) -> FailedStream:
        return self

    async def __anext__(self) -> Body:
        raise self._error

    async def aclose(self) -> None:
        return None


class ProviderClient:
    def __init__(
        self,
        what: str,
        headers: Mapping[str, str],
        max_connections: int,
        timeouts: Timeouts,
        error: ErrorMapper = status_error,
    ) -> None:
        self.what = what
        self._error = error
        self._session = make_session(headers, max_connections, what)
        # Requests and streams go through the lean pools (one per origin); the
        # aiohttp session serves only the rare GETs (model lists, health checks).
        self._headers = dict(headers)
        self._max_connections = max_connections
        self._pools: dict[str, FastPool] = {}
        self._timeout = client_timeout(timeouts)

    def _pool(self, url: str) -> FastPool:
        origin = url[: url.find("/", url.find("//") + 2)]
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = FastPool(
                origin, self._headers, self._max_connections, self.what
            )
        return pool

    async def post(self, url: str, body: Any, timeouts: Timeouts) -> Body:
        pool = self._pool(url)
        try:
            async with asyncio.timeout(timeouts.total):
                status, raw_headers, raw = await pool.post(
                    url, orjson.dumps(body), timeouts.connect
                )
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"{self.what} timed out") from exc
        if status >= 400:
            raise self._error(status, raw, response_headers(raw_headers))
        return parse_json_object(raw, self.what)

    async def get(self, url: str) -> Body:
        async with (
            transport_errors(self.what),
            self._session.get(url, timeout=self._timeout) as response,
        ):
            raw = await response.read()
            if response.status >= 400:
                raise self._error(response.status, raw, response.headers)
        return parse_json_object(raw, self.what)

    async def reachable(self, url: str) -> bool:
        """Whether ``url`` answers at all below 500 (cheap; for /ready)."""
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                return response.status < 500
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def stream(
        self, url: str, make_request: Callable[[], Any], timeouts: Timeouts, decode: Decoder
    ) -> AsyncIterator[Body]:
        """The decoded chunks of one SSE response.

        The request is built at the first ``anext``, with the connection: a
        request the provider cannot take then fails where the router handles
        every other failure of a stream.
        """
        body = make_request()
        loop = asyncio.get_running_loop()
        deadline = None if timeouts.total is None else loop.time() + timeouts.total
        async with transport_errors(self.what):
            # Nothing is yielded inside this block: the limit covers connect,
            # headers and the first chunk, all awaited in the caller's task.
            async with asyncio.timeout(timeouts.first_token):
                response = await self._pool(url).stream(
                    url, orjson.dumps(body), timeouts.connect, timeouts.idle
                )
                try:
                    if response.status >= 400:
                        raise self._error(response.status, await response.read(), response.headers)
                    chunks = decode(response)
                    first = await anext(chunks, None)
                except BaseException:
                    response.close()
                    raise
            finished = False
            try:
                if first is not None:
                    yield first
                    async for chunk in chunks:
                        if deadline is not None and loop.time() > deadline:
                            raise UpstreamTimeoutError(f"{self.what} exceeded its total time limit")
                        yield chunk
                finished = True
            finally:
                # A stream left unfinished (client gone, error) must not go back
                # to the pool half-read: closing it also tells the upstream to stop.
                if finished:
                    response.release()
                else:
                    response.close()

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        await self._session.close()
