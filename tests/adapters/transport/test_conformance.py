"""One conformance suite for every transport (adapters/transport/base.py's
contract): each case runs against the lean client and aiohttp's, over HTTP
and TLS, directly and through a forward proxy, against a real loopback
server that misbehaves on purpose (tests/fakes/raw_http.py)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest

from adapters.client import ProviderClient
from adapters.config import Timeouts, TLSConfig
from adapters.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from adapters.transport.base import REQUEST_HEADERS, Transport
from adapters.transport.registry import open_transport
from adapters.transport.settings import TransportSettings
from tests.certs import ServerCertificate, issue
from tests.fakes.proxy import ForwardProxy
from tests.fakes.raw_http import JSON_BODY, SSE_EVENTS, RawServer
from tests.helpers import free_port

TIMEOUTS = Timeouts(connect=2, first_token=5, idle=2, total=10)
KINDS = ("lean", "aiohttp")
SCHEMES = ("http", "https")
ROUTES = ("direct", "proxy")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    return issue(tmp_path_factory.mktemp("certs"))


@dataclass
class Setup:
    """One combination: an upstream, maybe a proxy, and settings that reach it."""

    upstream: RawServer
    proxy: ForwardProxy | None
    settings: TransportSettings

    def url(self, path: str) -> str:
        return f"{self.upstream.base_url}/{path}"

    def went_through_proxy(self) -> bool:
        return self.proxy is not None and bool(self.proxy.tunnels or self.proxy.forwarded)


def server_context(certs: ServerCertificate, client_certs: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert, certs.key)
    if client_certs:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(certs.ca))
    return context


@asynccontextmanager
async def setup(
    kind: str, scheme: str, route: str, certs: ServerCertificate, **options: Any
) -> AsyncIterator[Setup]:
    idle_close = options.pop("idle_close", None)
    tls = server_context(certs, options.pop("client_certs", False)) if scheme == "https" else None
    upstream = await RawServer(tls=tls, idle_close=idle_close).start()
    proxy = await ForwardProxy().start() if route == "proxy" else None
    settings = TransportSettings(
        what="upstream test",
        headers={"Authorization": "Bearer sk-test"},
        kind=kind,  # type: ignore[arg-type]
        tls=TLSConfig(ca_bundle=str(certs.ca)),
        proxy=proxy.url if proxy else None,
        trust_env=False,
        **options,
    )
    try:
        yield Setup(upstream, proxy, settings)
    finally:
        if proxy is not None:
            await proxy.stop()
        await upstream.stop()


combinations = pytest.mark.parametrize(
    ("kind", "scheme", "route"),
    [(k, s, r) for k in KINDS for s in SCHEMES for r in ROUTES],
)


async def post(transport: Transport, url: str, body: bytes = b'{"q": 1}') -> bytes:
    response = await transport.request("POST", url, body, TIMEOUTS)
    assert response.status == 200, response.body[:200]
    return response.body


async def read_all(transport: Transport, url: str) -> list[bytes]:
    response = await transport.stream("POST", url, b"{}", TIMEOUTS)
    assert response.status == 200
    pieces = []
    while piece := await response.read_some():
        pieces.append(piece)
    response.release()
    return pieces


@combinations
async def test_requests_reuse_one_connection_and_carry_the_headers(
    kind: str, scheme: str, route: str, certs: ServerCertificate
) -> None:
    async with setup(kind, scheme, route, certs) as s:
        transport = open_transport(s.settings)
        for _ in range(3):
            assert await post(transport, s.url("json")) == JSON_BODY
        await transport.aclose()
    assert s.upstream.connections == 1
    assert [r.body for r in s.upstream.requests] == [b'{"q": 1}'] * 3
    assert all(r.headers["authorization"] == "Bearer sk-test" for r in s.upstream.requests)
    assert all(r.target == "/v1/json" for r in s.upstream.requests)
    assert s.went_through_proxy() == (route == "proxy")


@combinations
async def test_every_body_framing_and_encoding_is_read_whole(
    kind: str, scheme: str, route: str, certs: ServerCertificate
) -> None:
    paths = ["chunked", "close-delimited", "connection-close", "gzip", "deflate", "raw-deflate"]
    async with setup(kind, scheme, route, certs) as s:
        transport = open_transport(s.settings)
        for path in paths:
            assert await post(transport, s.url(path)) == JSON_BODY, path
            assert await post(transport, s.url("json")) == JSON_BODY  # the pool still serves
        await transport.aclose()
    assert [s.upstream.hits(p) for p in paths] == [1] * len(paths)


@combinations
@pytest.mark.parametrize("path", ["sse", "gzip-sse"])
async def test_streams_arrive_as_they_are_sent(
    kind: str, scheme: str, route: str, path: str, certs: ServerCertificate
) -> None:
    async with setup(kind, scheme, route, certs) as s:
        transport = open_transport(s.settings)
        pieces = await read_all(transport, s.url(path))
        assert await post(transport, s.url("json")) == JSON_BODY
        await transport.aclose()
    assert b"".join(pieces) == b"".join(SSE_EVENTS)
    # Events 30 ms apart are handed over one by one, not once the body is over.
    assert len(pieces) >= 3


@combinations
async def test_idle_connections_expire_before_the_upstream_closes_them(
    kind: str, scheme: str, route: str, certs: ServerCertificate
) -> None:
    # The upstream drops idle connections after 1 s (uvicorn does after 5 s);
    # the client lets them go after 0.4 s, so it never writes to one being closed.
    async with setup(kind, scheme, route, certs, idle_close=1.0, keepalive_expiry=0.4) as s:
        transport = open_transport(s.settings)
        assert await post(transport, s.url("json")) == JSON_BODY
        await asyncio.sleep(0.6)
        assert await post(transport, s.url("json")) == JSON_BODY
        await transport.aclose()
    assert s.upstream.hits("json") == 2
    assert s.upstream.connections == 2


@combinations
async def test_a_connection_the_upstream_closed_is_not_written_to(
    kind: str, scheme: str, route: str, certs: ServerCertificate
) -> None:
    # Here the upstream closes idle connections long before the client would:
    # the request goes on a new connection, once.
    async with setup(kind, scheme, route, certs, idle_close=0.2, keepalive_expiry=30) as s:
        transport = open_transport(s.settings)
        assert await post(transport, s.url("json")) == JSON_BODY
        await asyncio.sleep(0.5)
        assert await post(transport, s.url("json")) == JSON_BODY
        await transport.aclose()
    assert s.upstream.hits("json") == 2


@combinations
async def test_a_request_the_upstream_received_is_never_sent_again(
    kind: str, scheme: str, route: str, certs: ServerCertificate
) -> None:
    async with setup(kind, scheme, route, certs) as s:
        transport = open_transport(s.settings)
        assert await post(transport, s.url("json")) == JSON_BODY
        with pytest.raises(UpstreamError) as raised:
            await post(transport, s.url("no-answer"))
        assert raised.value.status == 502 and raised.value.retryable
        await transport.aclose()
    assert s.upstream.hits("no-answer") == 1


@combinations
async def test_a_decompression_bomb_stops_at_the_limit(
    kind: str, scheme: str, route: str, certs: ServerCertificate
) -> None:
    async with setup(kind, scheme, route, certs, max_response_bytes=1_000_000) as s:
        transport = open_transport(s.settings)
        with pytest.raises(UpstreamError, match="max_response_bytes"):
            await post(transport, s.url("bomb"))
        assert await post(transport, s.url("json")) == JSON_BODY
        await transport.aclose()


@combinations
async def test_a_redirect_is_a_502_that_names_the_location(
    kind: str, scheme: str, route: str, certs: ServerCertificate
) -> None:
    async with setup(kind, scheme, route, certs) as s:
        client = ProviderClient(s.settings)
        with pytest.raises(UpstreamError) as raised:
            await client.post(s.url("redirect"), {"q": 1}, TIMEOUTS)
        await client.aclose()
    assert raised.value.status == 502
    assert "https://elsewhere.example/v1" in raised.value.message
    assert s.upstream.hits("redirect") == 1


@combinations
async def test_a_stalled_stream_times_out_on_its_idle_limit(
    kind: str, scheme: str, route: str, certs: ServerCertificate
) -> None:
    async with setup(kind, scheme, route, certs) as s:
        transport = open_transport(s.settings)
        timeouts = TIMEOUTS.model_copy(update={"idle": 0.3})
        response = await transport.stream("POST", s.url("stall-sse"), b"{}", timeouts)
        assert await response.read_some() == SSE_EVENTS[0]
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamTimeoutError):
            await response.read_some()
        assert asyncio.get_running_loop().time() - started < 2
        response.close()
        await transport.aclose()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scheme", SCHEMES)
async def test_an_unreachable_upstream_is_unavailable(kind: str, scheme: str) -> None:
    settings = TransportSettings(what="upstream nowhere", kind=kind, trust_env=False)  # type: ignore[arg-type]
    transport = open_transport(settings)
    with pytest.raises(UpstreamError) as raised:
        await transport.request("POST", f"{scheme}://127.0.0.1:{free_port()}/v1/x", b"{}", TIMEOUTS)
    await transport.aclose()
    assert raised.value.status == 503 and "unreachable" in raised.value.message


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
async def test_an_untrusted_certificate_is_refused(
    kind: str, route: str, certs: ServerCertificate
) -> None:
    async with setup(kind, "https", route, certs) as s:
        transport = open_transport(replace(s.settings, tls=TLSConfig()))  # no ca_bundle
        with pytest.raises(GatewayError) as raised:
            await post(transport, s.url("json"))
        await transport.aclose()
    assert raised.value.status in (502, 503)
    assert "certificate" in raised.value.message
    assert s.upstream.hits("json") == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
async def test_mutual_tls_presents_the_client_certificate(
    kind: str, route: str, certs: ServerCertificate
) -> None:
    async with setup(kind, "https", route, certs, client_certs=True) as s:
        with_cert = TLSConfig(
            ca_bundle=str(certs.ca),
            client_cert=str(certs.client_cert),
            client_key=str(certs.client_key),
        )
        transport = open_transport(replace(s.settings, tls=with_cert))
        assert await post(transport, s.url("json")) == JSON_BODY
        await transport.aclose()
        without = open_transport(s.settings)
        with pytest.raises(GatewayError):
            await post(without, s.url("json"))
        await without.aclose()
    assert s.upstream.hits("json") == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_ssl_cert_file_is_honoured(
    kind: str, certs: ServerCertificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    async with setup(kind, "https", "direct", certs) as s:
        transport = open_transport(replace(s.settings, tls=TLSConfig()))
        assert await post(transport, s.url("json")) == JSON_BODY
        await transport.aclose()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scheme", SCHEMES)
async def test_proxies_come_from_the_environment_unless_no_proxy_says_otherwise(
    kind: str, scheme: str, certs: ServerCertificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with setup(kind, scheme, "direct", certs) as s:
        proxy = await ForwardProxy().start()
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        through_env = open_transport(replace(s.settings, trust_env=True))
        assert await post(through_env, s.url("json")) == JSON_BODY
        await through_env.aclose()
        assert len(proxy.tunnels) + len(proxy.forwarded) == 1
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        bypassing = open_transport(replace(s.settings, trust_env=True))
        assert await post(bypassing, s.url("json")) == JSON_BODY
        await bypassing.aclose()
        assert len(proxy.tunnels) + len(proxy.forwarded) == 1
        await proxy.stop()
    assert s.upstream.hits("json") == 2


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scheme", SCHEMES)
async def test_proxy_credentials_are_sent_to_the_proxy_only(
    kind: str, scheme: str, certs: ServerCertificate
) -> None:
    async with setup(kind, scheme, "direct", certs) as s:
        proxy = await ForwardProxy(require_auth="Basic dXNlcjpwQHNz").start()  # user:p@ss
        authorized = open_transport(
            replace(s.settings, proxy=f"http://user:p%40ss@127.0.0.1:{proxy.port}")
        )
        assert await post(authorized, s.url("json")) == JSON_BODY
        await authorized.aclose()
        refused = ProviderClient(replace(s.settings, proxy=proxy.url))
        with pytest.raises(GatewayError) as raised:
            await refused.post(s.url("json"), {"q": 1}, TIMEOUTS)
        await refused.aclose()
        await proxy.stop()
    assert raised.value.status in (502, 503)
    assert s.upstream.hits("json") == 1
    assert "proxy-authorization" not in s.upstream.requests[0].headers


def test_the_suite_covers_every_transport() -> None:
    from adapters.transport.registry import TRANSPORTS

    assert set(TRANSPORTS) == set(KINDS)


@combinations
async def test_request_headers_of_the_context_go_with_the_request(
    kind: str, scheme: str, route: str, certs: ServerCertificate
) -> None:
    async with setup(kind, scheme, route, certs) as s:
        transport = open_transport(s.settings)
        token = REQUEST_HEADERS.set({"traceparent": "00-abc-def-01"})
        try:
            assert await post(transport, s.url("json")) == JSON_BODY
        finally:
            REQUEST_HEADERS.reset(token)
        assert await post(transport, s.url("json")) == JSON_BODY
        await transport.aclose()
    first, second = s.upstream.requests
    assert first.headers["traceparent"] == "00-abc-def-01"
    assert "traceparent" not in second.headers
