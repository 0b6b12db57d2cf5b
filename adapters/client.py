"""One provider's pooled HTTP client, shared by every adapter kind.

JSON calls and SSE streams run under the gateway's timeouts (connect, first
token, idle gap, total) and map failures onto ``adapters.errors``. What differs
per provider is passed in: how an HTTP error answer reads (``ErrorMapper``)
and how a stream body becomes OpenAI chunks (a ``ChunkDecoder``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson

from adapters.config import Timeouts
from adapters.errors import GatewayError, UpstreamTimeoutError
from adapters.transport.aiohttp_client import client_timeout, make_session
from adapters.transport.errors import parse_json_object, status_error, transport_errors
from adapters.transport.lean import FastPool, StreamedResponse
from adapters.transport.lean import headers as response_headers
from adapters.transport.sse import ChunkDecoder

Body = dict[str, Any]
ErrorMapper = Callable[[int, bytes, Mapping[str, str]], GatewayError]
Batch = list[Body]  # the chunks decoded from one read of a stream


class FailedStream:
    """A stream that fails at its first ``anext``, where the router handles
    every stream failure (and releases what it acquired for the attempt)."""

    def __init__(self, error: GatewayError) -> None:
        self._error = error

    def __aiter__(self) -> FailedStream:
        return self

    async def __anext__(self) -> Batch:
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

    def stream(
        self,
        url: str,
        make_request: Callable[[], Any],
        timeouts: Timeouts,
        decoder: Callable[[], ChunkDecoder],
    ) -> UpstreamStream:
        """The chunks of one SSE response, in batches (see ``UpstreamStream``)."""
        return UpstreamStream(self, url, make_request, timeouts, decoder)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        await self._session.close()


class UpstreamStream:
    """The chunks of one SSE response, in batches: each batch is what one read
    of the socket completed, so chunks that arrived together are sent on
    together. ``finished`` tells, without waiting, that the batch just
    returned was the last, so the client's response can end in the same write.

    The request is sent at the first ``anext``: a request the provider cannot
    take then fails where the router handles every other failure of a stream.
    """

    __slots__ = (
        "_client",
        "_deadline",
        "_decode",
        "_decoder",
        "_make_request",
        "_response",
        "_timeouts",
        "_url",
    )

    def __init__(
        self,
        client: ProviderClient,
        url: str,
        make_request: Callable[[], Any],
        timeouts: Timeouts,
        decoder: Callable[[], ChunkDecoder],
    ) -> None:
        self._client = client
        self._url = url
        self._make_request = make_request
        self._timeouts = timeouts
        self._decoder = decoder
        self._response: StreamedResponse | None = None
        self._decode: ChunkDecoder | None = None
        self._deadline: float | None = None

    @property
    def finished(self) -> bool:
        decode = self._decode
        return decode is not None and decode.done and decode.failure is None

    def __aiter__(self) -> UpstreamStream:
        return self

    async def __anext__(self) -> Batch:
        response, decode = self._response, self._decode
        if response is None or decode is None:
            return await self._open()
        late = self._deadline is not None and asyncio.get_running_loop().time() > self._deadline
        if late and not decode.done:
            response.close()
            raise UpstreamTimeoutError(f"{self._client.what} exceeded its total time limit")
        try:
            batch = await _next_batch(response, decode)
        except TimeoutError as exc:
            response.close()
            raise UpstreamTimeoutError(f"{self._client.what} timed out") from exc
        except BaseException:
            response.close()
            raise
        if not batch:
            response.release()  # read to its end: the connection can serve again
            raise StopAsyncIteration
        return batch

    async def _open(self) -> Batch:
        """Send the request; the first batch, all under the first-token limit."""
        client, timeouts = self._client, self._timeouts
        body = orjson.dumps(self._make_request())
        if timeouts.total is not None:
            self._deadline = asyncio.get_running_loop().time() + timeouts.total
        try:
            async with asyncio.timeout(timeouts.first_token):
                response = await client._pool(self._url).stream(
                    self._url, body, timeouts.connect, timeouts.idle
                )
                try:
                    if response.status >= 400:
                        raw = await response.read()
                        raise client._error(response.status, raw, response.headers)
                    decode = self._decoder()
                    batch = await _next_batch(response, decode)
                except BaseException:
                    response.close()
                    raise
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"{client.what} timed out") from exc
        if not batch:
            response.release()
            raise StopAsyncIteration
        self._response, self._decode = response, decode
        return batch

    async def aclose(self) -> None:
        """Abandon the stream; unless it was read to its end, closing the
        connection also tells the upstream to stop."""
        response = self._response
        if response is not None and not self.finished:
            response.close()


async def _next_batch(response: StreamedResponse, decode: ChunkDecoder) -> Batch:
    """The chunks completed by what arrives next; empty once the stream is over."""
    while not decode.done:
        if decode.failure is not None:
            raise decode.failure
        data = await response.read_some()
        if not data:
            decode.done = True
            return decode.end()
        batch = decode.feed(data)
        if batch:
            return batch
    return []
