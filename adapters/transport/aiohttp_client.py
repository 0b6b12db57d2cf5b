"""The aiohttp transport: aiohttp's client under the same contract as the lean
one (``adapters.transport.base``), for upstreams where a widely used client
is worth its cost per request (``transport: aiohttp``).

aiohttp keeps the connections (expiring idle ones after
``keepalive_expiry``), speaks TLS and CONNECT; this module adds what the
contract asks beyond that: the gateway's own decompression with its size
limit, no redirects, the proxy chosen as the lean client chooses it, and
aiohttp's exceptions mapped by ``adapters.transport.errors``.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext

import aiohttp
from multidict import CIMultiDict

from adapters.config import Timeouts
from adapters.transport.base import (
    REQUEST_HEADERS,
    RawHeaders,
    Response,
    exchange_limit,
    header_map,
)
from adapters.transport.decoding import BodyDecoder
from adapters.transport.errors import transport_error
from adapters.transport.settings import Origin, TransportSettings

_JSON = {"Content-Type": "application/json"}


class AiohttpTransport:
    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            settings = self.settings
            connector = aiohttp.TCPConnector(
                limit=settings.max_connections,
                limit_per_host=settings.max_connections,
                keepalive_timeout=settings.keepalive_expiry,
                ssl=settings.ssl_context(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=dict(settings.headers),
                auto_decompress=False,  # decompressed here, under the size limit
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                raise_for_status=False,
                trust_env=False,  # the proxy is chosen by TransportSettings.proxy_for
            )
        return self._session

    def _proxy(self, url: str) -> str | None:
        """The proxy URL for ``url`` (aiohttp reads credentials from it)."""
        key = url[: url.find("/", url.find("//") + 2)]
        if key not in self._proxies:
            proxy = self.settings.proxy_for(Origin.of(url))
            self._proxies[key] = None if proxy is None else proxy.source
        return self._proxies[key]

    async def _send(
        self, method: str, url: str, body: bytes | None, timeouts: Timeouts
    ) -> aiohttp.ClientResponse:
        proxy = self._proxy(url)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.idle
        )
        headers = _JSON if body is not None else None
        extra = REQUEST_HEADERS.get()
        if extra:
            headers = {**(headers or {}), **extra}
        return await self._client().request(
            method,
            url,
            data=body,
            headers=headers,
            proxy=proxy,
            allow_redirects=False,
            timeout=timeout,
        )

    async def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        timeouts: Timeouts,
        deadline: float | None = None,
    ) -> Response:
        loop = asyncio.get_running_loop()
        limit = exchange_limit(timeouts, loop.time(), deadline)
        guard = asyncio.timeout_at(limit) if limit is not None else nullcontext()
        try:
            async with guard:
                response = await self._send(method, url, body, timeouts)
                try:
                    stream = AiohttpStream(response, self.settings)
                    raw = await stream.read()
                finally:
                    response.release()
        except Exception as exc:
            raise transport_error(exc, self.settings.what, sent=_sent(exc)) from exc
        return Response(response.status, list(response.raw_headers), raw)

    async def stream(
        self, method: str, url: str, body: bytes | None, timeouts: Timeouts
    ) -> AiohttpStream:
        try:
            response = await self._send(method, url, body, timeouts)
        except Exception as exc:
            raise transport_error(exc, self.settings.what, sent=_sent(exc)) from exc
        return AiohttpStream(response, self.settings)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class AiohttpStream:
    """An aiohttp response read as it arrives (``StreamedResponse``)."""

    __slots__ = ("_decoder", "_response", "_what", "raw_headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, settings: TransportSettings) -> None:
        self._response = response
        self._what = settings.what
        self.status = response.status
        self.raw_headers: RawHeaders = list(response.raw_headers)
        self._decoder = BodyDecoder.for_headers(
            self.raw_headers, settings.max_response_bytes, settings.what
        )

    @property
    def headers(self) -> CIMultiDict[str]:
        return header_map(self.raw_headers)

    async def read_some(self) -> bytes:
        content = self._response.content
        while True:
            try:
                data = await content.readany()
            except Exception as exc:
                raise transport_error(exc, self._what, sent=True) from exc
            if not data:
                return self._decoder.flush()
            decoded = self._decoder.feed(data)
            if decoded:
                return decoded

    async def read(self) -> bytes:
        pieces = []
        while piece := await self.read_some():
            pieces.append(piece)
        return b"".join(pieces)

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        self._response.close()


def _sent(exc: BaseException) -> bool:
    """Whether the request may have reached the upstream (not a connect failure)."""
    return not isinstance(
        exc,
        aiohttp.ClientConnectorError
        | aiohttp.ClientProxyConnectionError
        | aiohttp.ConnectionTimeoutError,
    )
