"""Everything that can go wrong with an upstream, in the gateway's exception
tree: transport failures of either client (``transport_error``), HTTP error
answers (``status_error``) and bodies that are not the JSON they should be
(``parse_json_object``). The one place where a socket, TLS or aiohttp
exception becomes an error a client can be shown."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from adapters.errors import (
    GatewayError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)


def status_error(status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamStatusError:
    """Build the error for an upstream HTTP error answer, keeping its message."""
    message, type_, param, code = f"upstream returned HTTP {status}", None, None, None
    try:
        payload: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            message = str(error.get("message") or payload.get("message") or message)
            type_ = error.get("type") if isinstance(error.get("type"), str) else None
            param = error.get("param") if isinstance(error.get("param"), str) else None
            code = str(error["code"]) if error.get("code") is not None else None
        elif isinstance(error, str):
            message = error
    elif raw:
        message = f"{message}: {raw[:200].decode(errors='replace')}"
    kept = {k: headers[k] for k in ("Retry-After",) if k in headers}
    return UpstreamStatusError(status, message, type=type_, param=param, code=code, headers=kept)


def parse_json_object(raw: bytes, what: str, part: str = "a response") -> dict[str, Any]:
    """A JSON object from ``what`` (a backend), or UpstreamError naming it and the part."""
    try:
        result = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(f"{what} sent {part} that is not valid JSON") from exc
    if not isinstance(result, dict):
        raise UpstreamError(f"{what} sent {part} that is not a JSON object")
    return result


def transport_error(exc: BaseException, what: str, *, sent: bool) -> GatewayError:
    """The gateway error for a failed exchange with ``what``; ``sent`` tells
    whether the request may have reached it (a connect failure never did)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        if sent:
            return UpstreamTimeoutError(f"{what} timed out")
        return UpstreamTimeoutError(f"{what} did not accept a connection in time")
    if isinstance(exc, ssl.SSLCertVerificationError | aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc
        return UpstreamError(f"{what}: TLS certificate verification failed ({reason})")
    if isinstance(exc, ssl.SSLError | aiohttp.ClientSSLError):
        return UpstreamError(f"{what}: TLS handshake failed ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return UpstreamUnavailableError(f"{what}: the proxy refused the tunnel (HTTP {exc.status})")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return UpstreamUnavailableError(f"{what}: the proxy is unreachable")
    if isinstance(exc, aiohttp.ClientConnectorError) or (isinstance(exc, OSError) and not sent):
        return UpstreamUnavailableError(f"{what} is unreachable")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError | OSError):
        return UpstreamError(f"{what} closed the connection before the response ended")
    if isinstance(exc, aiohttp.ClientResponseError):
        return UpstreamError(f"{what} sent a malformed HTTP response ({exc.message})")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError(f"{what} failed: {type(exc).__name__}")
    return UpstreamError(f"{what} failed: {type(exc).__name__}")


def redirect_error(status: int, location: str | None, what: str) -> UpstreamError:
    """A 3xx: the gateway follows no redirect (it would resend the request, and
    the body, to wherever the answer points); the operator fixes the base_url."""
    where = f" to {location}" if location else " without a Location"
    return UpstreamError(
        f"{what} answered HTTP {status}, a redirect{where}; redirects are not followed: "
        "set the provider's base_url to where it points",
        code="upstream_redirect",
    )
