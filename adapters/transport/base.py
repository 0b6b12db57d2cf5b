"""The one interface under every upstream call: a request goes in, a whole
response or a stream comes out.

Every transport keeps the same contract, checked by one conformance suite
(tests/adapters/transport/test_conformance.py) for each implementation:

- Failures are ``adapters.errors`` exceptions, mapped in one place
  (``adapters.transport.errors``): ``UpstreamUnavailableError`` when no
  connection could be made (the request never left), ``UpstreamTimeoutError``
  when a limit ran out, ``UpstreamError`` for anything else.
- A request is written at most once: it is sent again on another connection
  only when the first one was already closed before the write (it provably
  never left). Anything that fails after the write is the caller's failed
  attempt, for its retry policy to judge.
- Idle keep-alive connections are dropped after ``keepalive_expiry`` (or the
  upstream's own ``Keep-Alive: timeout``), before the upstream would close them.
- Bodies framed by Content-Length, chunked encoding, or the connection's
  close are all read; gzip and deflate (zlib or raw) are decompressed as the
  bytes arrive; more than ``max_response_bytes`` after decompression fails.
- Redirects are not followed: a 3xx is returned like any answer.
- The headers in ``REQUEST_HEADERS``, when set, go with the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from multidict import CIMultiDict

from adapters.config import Timeouts

RawHeaders = list[tuple[bytes, bytes]]

# Headers for the requests sent in this context, beside the provider's own:
# the W3C trace context of the caller's span (set by gateway.observability.tracing).
REQUEST_HEADERS: ContextVar[Mapping[str, str] | None] = ContextVar(
    "vllm_gateway_request_headers", default=None
)


def header_map(raw: RawHeaders) -> CIMultiDict[str]:
    """Response headers, case-insensitive (built only when someone reads them)."""
    return CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


@dataclass(slots=True)
class Response:
    status: int
    raw_headers: RawHeaders
    body: bytes  # decompressed

    @property
    def headers(self) -> CIMultiDict[str]:
        return header_map(self.raw_headers)


def exchange_limit(timeouts: Timeouts, now: float, deadline: float | None) -> float | None:
    """When a whole exchange must be over (the event loop's clock): its total
    timeout, or the caller's deadline if that comes first."""
    limit = None if timeouts.total is None else now + timeouts.total
    if deadline is not None and (limit is None or deadline < limit):
        return deadline
    return limit


class StreamedResponse(Protocol):
    """An answer read as it arrives: status and headers first, then the body."""

    status: int
    raw_headers: RawHeaders

    @property
    def headers(self) -> CIMultiDict[str]: ...

    async def read_some(self) -> bytes:
        """What has arrived since the last call (waiting for some, at most the
        idle timeout); decompressed; ``b""`` once the body is over."""
        ...

    async def read(self) -> bytes:
        """The rest of the body, whole."""
        ...

    def release(self) -> None:
        """Done with it: the connection may serve again once the body has ended."""
        ...

    def close(self) -> None:
        """Abandon it: the connection is closed, which tells the upstream to stop."""
        ...


class Transport(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        timeouts: Timeouts,
        deadline: float | None = None,
    ) -> Response:
        """One whole exchange, under ``timeouts.connect`` and ``timeouts.total``,
        and over by ``deadline`` (the event loop's clock) when given."""
        ...

    async def stream(
        self, method: str, url: str, body: bytes | None, timeouts: Timeouts
    ) -> StreamedResponse:
        """Send the request; return once the status and headers are in (the
        caller bounds that wait). Reads wait at most ``timeouts.idle``."""
        ...

    async def aclose(self) -> None: ...
