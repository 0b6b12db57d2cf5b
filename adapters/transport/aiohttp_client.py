"""aiohttp's client, for the upstream calls that go through it."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import orjson

from adapters.config import Timeouts


def make_session(
    headers: Mapping[str, str], max_connections: int, name: str
) -> aiohttp.ClientSession:
    """One keep-alive pool per provider, built once in the app lifespan."""
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        limit_per_host=max_connections,
        keepalive_timeout=30,
        ttl_dns_cache=300,
        enable_cleanup_closed=False,
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers=dict(headers),
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
        raise_for_status=False,
    )


def client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    """aiohttp's limits for the session's plain GETs: connect and total."""
    return aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect)
