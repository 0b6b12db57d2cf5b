"""A forward HTTP proxy for tests, in the test's event loop: ``CONNECT`` opens
a tunnel (https upstreams); a request in absolute form (``POST
http://host:port/path``) is forwarded in origin form (plain-http upstreams).
It records what it was asked, so a test can tell that a call went through it.
With ``require_auth`` set, requests without that ``Proxy-Authorization`` get 407.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class ForwardProxy:
    require_auth: str | None = None
    tunnels: list[str] = field(default_factory=list)  # CONNECT targets
    forwarded: list[str] = field(default_factory=list)  # absolute-form request targets
    authorizations: list[str | None] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, headers = _parse(head)
            self.authorizations.append(headers.get("proxy-authorization"))
            if self.require_auth and headers.get("proxy-authorization") != self.require_auth:
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
                )
                await writer.drain()
                return
            if method == "CONNECT":
                self.tunnels.append(target)
                host, _, port = target.rpartition(":")
                up_reader, upstream = await asyncio.open_connection(host.strip("[]"), int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await _pipe_both(reader, writer, up_reader, upstream)
                return
            parts = urlsplit(target)
            up_reader, upstream = await asyncio.open_connection(parts.hostname, parts.port or 80)
            back = asyncio.create_task(_pipe(up_reader, writer))
            try:
                while True:
                    self.forwarded.append(target)
                    await _forward(head, reader, upstream)
                    head = await reader.readuntil(b"\r\n\r\n")
                    _, target, _ = _parse(head)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                back.cancel()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return
        finally:
            if upstream is not None:
                upstream.close()
            writer.close()


def _parse(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


async def _forward(
    head: bytes, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter
) -> None:
    """One request, rewritten to origin form, without the proxy's own headers."""
    method, target, headers = _parse(head)
    parts = urlsplit(target)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kept = [
        line
        for line in head.decode("latin-1").split("\r\n")[1:]
        if line and not line.lower().startswith(("proxy-authorization", "proxy-connection"))
    ]
    upstream.write(("\r\n".join([f"{method} {path} HTTP/1.1", *kept]) + "\r\n\r\n").encode())
    length = int(headers.get("content-length", "0"))
    if length:
        upstream.write(await reader.readexactly(length))
    await upstream.drain()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.close()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    upstream: asyncio.StreamWriter,
) -> None:
    tasks = [
        asyncio.create_task(_pipe(reader, upstream)),
        asyncio.create_task(_pipe(up_reader, writer)),
    ]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
