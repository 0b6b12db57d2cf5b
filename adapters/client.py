"""One provider's client, shared by every adapter kind: JSON calls and SSE
streams over the provider's transport (``adapters.transport``).

Calls run under the gateway's timeouts (connect, first token, idle gap,
total) and the router's deadline for the attempt; failures are
``adapters.errors`` exceptions. What differs per provider is passed in: how
an HTTP error answer reads (``ErrorMapper``) and how a stream body becomes
OpenAI chunks (a ``ChunkDecoder``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from adapters.config import ProviderConnection, Timeouts
from adapters.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from adapters.transport.base import RawHeaders, StreamedResponse, Transport, header_map
from adapters.transport.errors import parse_json_object, redirect_error, status_error
from adapters.transport.registry import open_transport
from adapters.transport.settings import TransportSettings
from adapters.transport.sse import ChunkDecoder

Body = dict[str, Any]
ErrorMapper = Callable[[int, bytes, Mapping[str, str]], GatewayError]
Batch = list[Body]  # the chunks decoded from one read of a stream
HEALTH_TIMEOUT = Timeouts(connect=2.0, first_token=2.0, idle=2.0, total=2.0)
GET_TIMEOUT = Timeouts(connect=5.0, first_token=10.0, idle=10.0, total=10.0)


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


def transport_settings(
    config: ProviderConnection, what: str, headers: Mapping[str, str]
) -> TransportSettings:
    """How a provider is reached: its connection settings and the headers
    (credentials included) every call carries."""
    return TransportSettings(
        what=what,
        headers=headers,
        kind=config.transport,
        max_connections=config.max_connections,
        keepalive_expiry=config.keepalive_expiry,
        max_response_bytes=config.max_response_bytes,
        max_event_bytes=config.max_event_bytes,
        tls=config.tls,
        proxy=config.proxy,
    )


class ProviderClient:
    def __init__(self, settings: TransportSettings, error: ErrorMapper = status_error) -> None:
        self.what = settings.what
        self.max_event_bytes = settings.max_event_bytes
        self.transport: Transport = open_transport(settings)
        self._error = error

    def failure(self, status: int, raw: bytes, raw_headers: RawHeaders) -> GatewayError:
        """The error for an answer that is not a success (a 3xx or an error status)."""
        headers = header_map(raw_headers)
        if status < 400:
            return redirect_error(status, headers.get("Location"), self.what)
        if status == 407:  # the proxy's, not the client's, to fix
            return UpstreamError(f"{self.what}: the proxy refused the gateway's credentials")
        return self._error(status, raw, headers)

    async def post(
        self, url: str, body: Any, timeouts: Timeouts, deadline: float | None = None
    ) -> Body:
        response = await self.transport.request("POST", url, orjson.dumps(body), timeouts, deadline)
        if response.status >= 300:
            raise self.failure(response.status, response.body, response.raw_headers)
        return parse_json_object(response.body, self.what)

    async def get(self, url: str, timeouts: Timeouts = GET_TIMEOUT) -> Body:
        response = await self.transport.request("GET", url, None, timeouts)
        if response.status >= 300:
            raise self.failure(response.status, response.body, response.raw_headers)
        return parse_json_object(response.body, self.what)

    async def check(self, url: str) -> str | None:
        """Why ``url`` shows the backend unusable, or None when it answers
        (cheap; for health checks and /ready). Rejected credentials are
        unhealthy: every request would fail the same way."""
        try:
            response = await self.transport.request("GET", url, None, HEALTH_TIMEOUT)
        except GatewayError as exc:
            return exc.message
        if response.status in (401, 403):
            return f"credentials rejected (HTTP {response.status})"
        if response.status >= 500:
            return f"HTTP {response.status}"
        return None

    def stream(
        self,
        url: str,
        make_request: Callable[[], Any],
        timeouts: Timeouts,
        decoder: Callable[[], ChunkDecoder],
        deadline: float | None = None,
    ) -> UpstreamStream:
        """The chunks of one SSE response, in batches (see ``UpstreamStream``)."""
        return UpstreamStream(self, url, make_request, timeouts, decoder, deadline)

    async def aclose(self) -> None:
        await self.transport.aclose()


class UpstreamStream:
    """The chunks of one SSE response, in batches: each batch is what one read
    of the socket completed, so chunks that arrived together are sent on
    together. ``finished`` tells, without waiting, that the batch just
    returned was the last, so the client's response can end in the same write.

    The request is sent at the first ``anext``, under the first-token limit
    and the attempt's deadline: a request the provider cannot take then fails
    where the router handles every other failure of a stream.
    """

    __slots__ = (
        "_attempt_deadline",
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
        deadline: float | None,
    ) -> None:
        self._client = client
        self._url = url
        self._make_request = make_request
        self._timeouts = timeouts
        self._decoder = decoder
        self._attempt_deadline = deadline
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
        except BaseException:
            response.close()
            raise
        if not batch:
            response.release()  # read to its end: the connection can serve again
            raise StopAsyncIteration
        return batch

    def _first_limit(self, now: float) -> float | None:
        """When the first batch must be in: the first-token limit, or the attempt's deadline."""
        first = self._timeouts.first_token
        limit = None if first is None else now + first
        deadline = self._attempt_deadline
        if deadline is not None and (limit is None or deadline < limit):
            limit = deadline
        return limit

    async def _open(self) -> Batch:
        """Send the request; the first batch, all under the first-token limit."""
        client, timeouts = self._client, self._timeouts
        body = orjson.dumps(self._make_request())
        now = asyncio.get_running_loop().time()
        if timeouts.total is not None:
            self._deadline = now + timeouts.total
        try:
            async with asyncio.timeout_at(self._first_limit(now)):
                response = await client.transport.stream("POST", self._url, body, timeouts)
                try:
                    if response.status >= 300:
                        raw = await response.read()
                        raise client.failure(response.status, raw, response.raw_headers)
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
