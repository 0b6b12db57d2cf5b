"""How one provider's upstream is reached: pool size, idle expiry, TLS, proxy
and size limits, resolved once (at startup or reload) from its config, so a
request only looks them up."""

from __future__ import annotations

import base64
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from adapters.config import (
    DEFAULT_KEEPALIVE_EXPIRY,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    TLSConfig,
    TransportKind,
)


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, host and port of a URL: what one pool of connections reaches."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(scheme, parts.hostname or "", port)

    @property
    def authority(self) -> str:
        """``host[:port]`` as the Host header and CONNECT name it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy: plain-http upstreams are asked of it in absolute form,
    https upstreams reached through a CONNECT tunnel."""

    host: str
    port: int
    authorization: str | None = None  # the Proxy-Authorization header value
    source: str = ""  # the URL as configured, credentials included (never logged)

    @classmethod
    def parse(cls, url: str) -> Proxy:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(f"only http:// proxies are supported, not {parts.scheme}://")
        authorization = None
        if parts.username is not None:
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            authorization = "Basic " + base64.b64encode(secret).decode()
        return cls(parts.hostname or "", parts.port or 80, authorization, url)

    @property
    def url(self) -> str:
        """The proxy's URL without credentials (for aiohttp, and for messages)."""
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """Everything a transport needs to reach one provider."""

    what: str  # names the upstream in errors: "upstream https://api.example.com/v1"
    headers: Mapping[str, str] = field(default_factory=dict)  # sent on every call
    kind: TransportKind = "lean"
    max_connections: int = 256
    keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    tls: TLSConfig = field(default_factory=TLSConfig)
    proxy: str | None = None  # explicit proxy URL; None: the environment's, if any
    trust_env: bool = True

    def ssl_context(self) -> ssl.SSLContext:
        return tls_context(self.tls)

    def proxy_for(self, origin: Origin) -> Proxy | None:
        """The proxy a call to ``origin`` goes through, or None."""
        if self.proxy is not None:
            return Proxy.parse(self.proxy)
        if not self.trust_env:
            return None
        found = urllib.request.getproxies_environment()
        url = found.get(origin.scheme)
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        if url is None or bypass(origin.host, found):
            return None
        return Proxy.parse(url)


def tls_context(config: TLSConfig) -> ssl.SSLContext:
    """A client context: the system's CAs (``SSL_CERT_FILE``/``SSL_CERT_DIR``
    honoured by OpenSSL), plus ``ca_bundle``, plus a client certificate."""
    context = ssl.create_default_context()
    if config.ca_bundle is not None:
        context.load_verify_locations(cafile=config.ca_bundle)
    if config.client_cert is not None:
        context.load_cert_chain(config.client_cert, config.client_key)
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
