"""A minimal HTTP/1.1 keep-alive client on a raw asyncio protocol.

The load driver's per-request cost has to stay far below the gateway's, so
requests are pre-rendered bytes and responses are parsed just enough to know
where they end (Content-Length or chunked), their status, when the first body
byte arrived (time to first token for streams), and, when asked, the body.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import cast

HEADER_END = b"\r\n\r\n"


@dataclass(slots=True)
class Reply:
    status: int
    started: float
    first_byte: float  # first body byte: the first SSE event of a stream
    finished: float
    events: int  # SSE ``data:`` events in the body
    error_event: bool  # a stream that carried an error event
    body: bytes  # only when the connection keeps bodies


def render_request(
    method: str, host: str, path: str, body: bytes, headers: dict[str, str]
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class ClientConnection(asyncio.Protocol):
    """One keep-alive connection, one request in flight at a time."""

    def __init__(self, keep_body: bool) -> None:
        self.keep_body = keep_body
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Reply] | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.buffer = b""
        self.status = 0
        self.in_body = False
        self.chunked = False
        self.remaining = 0  # body bytes left (Content-Length) or in the current chunk
        self.parts: list[bytes] = []
        self.started = 0.0
        self.first_byte = 0.0
        self.events = 0
        self.error_event = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("server closed the connection"))

    def request(self, raw: bytes) -> asyncio.Future[Reply]:
        assert self.transport is not None
        if self.closed:
            raise ConnectionError("connection is closed")
        self._reset()
        self.waiter = asyncio.get_running_loop().create_future()
        self.started = time.perf_counter()
        self.transport.write(raw)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer = self.buffer + data if self.buffer else data
        if not self.in_body and not self._parse_head():
            return
        if self.chunked:
            self._parse_chunks()
        else:
            self._take_body()

    def _parse_head(self) -> bool:
        end = self.buffer.find(HEADER_END)
        if end < 0:
            return False
        head = self.buffer[:end].lower()
        self.buffer = self.buffer[end + 4 :]
        self.status = int(head[9:12])
        self.in_body = True
        self.chunked = b"\r\ntransfer-encoding: chunked" in head
        if not self.chunked:
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                raise ValueError("response has neither Content-Length nor chunked encoding")
            line_end = head.find(b"\r\n", at + 2)
            self.remaining = int(head[at + 17 : line_end if line_end >= 0 else None])
        return True

    def _take_body(self) -> None:
        if self.buffer and not self.first_byte:
            self.first_byte = time.perf_counter()
        if len(self.buffer) < self.remaining:
            return
        self.parts.append(self.buffer[: self.remaining])
        self.buffer = self.buffer[self.remaining :]
        self._finish()

    def _parse_chunks(self) -> None:
        buffer = self.buffer
        while True:
            if self.remaining:
                if len(buffer) < self.remaining + 2:
                    break
                if not self.first_byte:
                    self.first_byte = time.perf_counter()
                data = buffer[: self.remaining]
                self.events += data.count(b"data: ")
                if b'data: {"error"' in data:
                    self.error_event = True
                if self.keep_body:
                    self.parts.append(data)
                buffer = buffer[self.remaining + 2 :]
                self.remaining = 0
                continue
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                break
            size = int(buffer[:line_end].split(b";", 1)[0], 16)
            if size == 0:
                if len(buffer) < line_end + 4:  # the empty trailer line
                    break
                self.buffer = buffer[line_end + 4 :]
                self._finish()
                return
            self.remaining = size
            buffer = buffer[line_end + 2 :]
        self.buffer = buffer

    def _finish(self) -> None:
        reply = Reply(
            status=self.status,
            started=self.started,
            first_byte=self.first_byte or time.perf_counter(),
            finished=time.perf_counter(),
            events=self.events,
            error_event=self.error_event,
            body=b"".join(self.parts) if self.keep_body else b"",
        )
        self.in_body = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(reply)


async def connect(host: str, port: int, keep_body: bool) -> ClientConnection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: ClientConnection(keep_body), host, port)
    return protocol
