"""HTTP plumbing shared by the adapters: the aiohttp session for plain GETs,
upstream error answers and transport failures mapped onto the gateway's
exception tree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
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


@asynccontextmanager
async def transport_errors(what: str) -> AsyncIterator[None]:
    """Map aiohttp and timeout failures to gateway errors naming the backend."""
    try:
        yield
    except GatewayError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeoutError(f"{what} timed out") from exc
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnavailableError(f"{what} is unreachable") from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
        raise UpstreamError(f"{what} closed the connection before the response ended") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"{what} failed: {type(exc).__name__}") from exc
