"""An HTTP/1.1 upstream written on raw sockets, so that it can misbehave on
purpose: what it does is chosen by the request's path. Runs in the test's
event loop (``await RawServer(...).start()``), over TCP or TLS, and records
every request and connection it saw.

Run it as a process too (``python -m tests.fakes.raw_http --port P``), as the
upstream of a gateway: then ``/chat/completions`` does what the request's
``model`` names (a gateway target ``{provider: hostile, model: huge-line}``).

Paths (any prefix, e.g. ``/v1``, is ignored; so is the query):
  /json             a JSON object, Content-Length, kept alive
  /completion       a chat completion, whatever the request (of any size) asked
  /chunked          the same JSON, in three chunks
  /close-delimited  no length: the body ends when the server closes
  /connection-close Content-Length and ``Connection: close``, then closed
  /gzip /deflate /raw-deflate   the JSON compressed (zlib header or not)
  /completion-raw-deflate       a chat completion, raw-deflate compressed
  /sse              SSE events 30 ms apart, chunked, then [DONE]
  /gzip-sse         the same stream gzip-compressed, flushed per event
  /stall-sse        one event, then nothing for 10 s
  /bomb             100 MB of zeros gzipped to ~100 KB
  /redirect         302 to https://elsewhere.example/v1
  /no-answer        reads the request and closes without answering
  /keepalive-hint   JSON with ``Keep-Alive: timeout=1``
  /huge-line        an SSE body whose first event is one line of 50 MB, no usage
  /huge-second-event  the same, after one ordinary event
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ssl
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson

JSON_BODY = orjson.dumps({"object": "test", "text": "héllo " * 50})
COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-raw",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "inflated whole"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
)
SSE_EVENTS = [
    b'data: {"choices":[{"index":0,"delta":{"content":"w%d "}}]}\n\n' % i for i in range(5)
] + [b"data: [DONE]\n\n"]


@dataclass
class SeenRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RawServer:
    tls: ssl.SSLContext | None = None
    idle_close: float | None = None  # close a keep-alive connection idle this long
    requests: list[SeenRequest] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}/v1"

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.target.split("?")[0].rsplit("/", 1)[-1] == path)

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_close)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                request = await _read_request(head, reader)
                self.requests.append(request)
                path = request.target.split("?")[0].rsplit("/", 1)[-1]
                if path == "completions" and request.body:  # a gateway's call: by model
                    path = str(orjson.loads(request.body).get("model", ""))
                handler = ROUTES.get(path, _json)
                if not await handler(self, writer):
                    return
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    def bomb(self) -> bytes:
        return _bomb_body()


@functools.cache
def _bomb_body() -> bytes:
    """100 MB of zeros, gzipped (about 100 KB), made once per test run."""
    deflate = zlib.compressobj(9, wbits=31)
    block = bytes(1_000_000)
    return b"".join(deflate.compress(block) for _ in range(100)) + deflate.flush()


async def _read_request(head: bytes, reader: asyncio.StreamReader) -> SeenRequest:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return SeenRequest(method, target, headers, body)


Handler = Callable[[RawServer, asyncio.StreamWriter], Awaitable[bool]]


def _answer(status: str, body: bytes, *extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _json(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(_answer("200 OK", JSON_BODY, "Content-Type: application/json"))
    await writer.drain()
    return True


async def _completion(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(_answer("200 OK", COMPLETION, "Content-Type: application/json"))
    await writer.drain()
    return True


async def _keepalive_hint(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(_answer("200 OK", JSON_BODY, "Keep-Alive: timeout=1"))
    await writer.drain()
    return True


async def _chunked(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    third = len(JSON_BODY) // 3
    for piece in (JSON_BODY[:third], JSON_BODY[third : 2 * third], JSON_BODY[2 * third :]):
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await writer.drain()
        await asyncio.sleep(0.01)
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


async def _close_delimited(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    half = len(JSON_BODY) // 2
    writer.write(JSON_BODY[:half])
    await writer.drain()
    await asyncio.sleep(0.02)
    writer.write(JSON_BODY[half:])
    await writer.drain()
    return False


async def _connection_close(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(_answer("200 OK", JSON_BODY, "Connection: close"))
    await writer.drain()
    return False


def _compressed(encoding: str, wbits: int, plain: bytes = JSON_BODY) -> Handler:
    async def handler(server: RawServer, writer: asyncio.StreamWriter) -> bool:
        deflate = zlib.compressobj(wbits=wbits)
        body = deflate.compress(plain) + deflate.flush()
        writer.write(_answer("200 OK", body, f"Content-Encoding: {encoding}"))
        await writer.drain()
        return True

    return handler


async def _sse(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
    for event in SSE_EVENTS:
        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        await asyncio.sleep(0.03)
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


async def _gzip_sse(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    writer.write(b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
    deflate = zlib.compressobj(wbits=31)
    for event in SSE_EVENTS:
        piece = deflate.compress(event) + deflate.flush(zlib.Z_SYNC_FLUSH)
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await writer.drain()
        await asyncio.sleep(0.03)
    tail = deflate.flush()
    writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
    await writer.drain()
    return True


async def _stall_sse(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
    event = SSE_EVENTS[0]
    writer.write(b"%x\r\n%s\r\n" % (len(event), event))
    await writer.drain()
    await asyncio.sleep(10)
    return False


async def _huge_line(server: RawServer, writer: asyncio.StreamWriter, first: bytes = b"") -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
    if first:
        writer.write(b"%x\r\n%s\r\n" % (len(first), first))
    piece = b"x" * 65536
    prefix = b'data: {"a": "'
    writer.write(b"%x\r\n%s\r\n" % (len(prefix), prefix))
    for _ in range(800):
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return False


async def _huge_second_event(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    return await _huge_line(server, writer, SSE_EVENTS[0])


async def _bomb(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(_answer("200 OK", server.bomb(), "Content-Encoding: gzip"))
    await writer.drain()
    return True


async def _redirect(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    writer.write(_answer("302 Found", b"", "Location: https://elsewhere.example/v1"))
    await writer.drain()
    return True


async def _no_answer(server: RawServer, writer: asyncio.StreamWriter) -> bool:
    return False


ROUTES: dict[str, Handler] = {
    "json": _json,
    "completion": _completion,
    "models": _json,
    "chunked": _chunked,
    "close-delimited": _close_delimited,
    "connection-close": _connection_close,
    "gzip": _compressed("gzip", 31),
    "deflate": _compressed("deflate", 15),
    "raw-deflate": _compressed("deflate", -15),
    "completion-raw-deflate": _compressed("deflate", -15, COMPLETION),
    "sse": _sse,
    "gzip-sse": _gzip_sse,
    "stall-sse": _stall_sse,
    "huge-line": _huge_line,
    "huge-second-event": _huge_second_event,
    "bomb": _bomb,
    "redirect": _redirect,
    "no-answer": _no_answer,
    "keepalive-hint": _keepalive_hint,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    async def serve() -> None:
        _bomb_body()  # made before the first request, not during it
        server = await asyncio.start_server(RawServer()._serve, "127.0.0.1", args.port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
