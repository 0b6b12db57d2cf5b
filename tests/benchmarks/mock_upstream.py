"""A mock OpenAI-compatible upstream that is never the bottleneck.

Run as its own process: ``python -m tests.benchmarks.mock_upstream --port P``.
A raw asyncio protocol on uvloop answers from pre-rendered bytes, so one core
serves tens of thousands of requests per second: whatever the benchmark
measures beyond that is the component in front of it.

- ``POST /v1/chat/completions``: a fixed completion with ``usage``; with
  ``"stream": true``, ``--chunks`` content chunks (one SSE event per HTTP
  chunk), then a usage chunk when ``stream_options.include_usage`` is true,
  then ``data: [DONE]``. The whole stream leaves in one write, unless the
  request carries ``"mock_pace_ms": N`` (not in OpenAI's API): then each
  event leaves in its own write, N ms apart, as a model generating tokens
  would send them.
- ``GET /v1/models`` lists the one model; ``GET /health`` answers ok.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from typing import cast

import orjson
import uvloop

MODEL = "mock-model"
CREATED = 1_700_000_000
COMPLETION_ID = "chatcmpl-bench0000000000000000"
USAGE = {"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28}
HEADER_END = b"\r\n\r\n"


def _response(status: str, content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status.encode()
        + b"\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def _json(status: str, payload: object) -> bytes:
    return _response(status, b"application/json", orjson.dumps(payload))


def _completion() -> dict[str, object]:
    return {
        "id": COMPLETION_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! " * 8},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }


def _chunk(delta: dict[str, str], finish: str | None) -> dict[str, object]:
    return {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _stream(chunks: int, include_usage: bool) -> list[bytes]:
    """The streaming response in pieces: the head, one HTTP chunk per SSE event
    (the last also ends the body)."""
    events = [_chunk({"role": "assistant", "content": "tok0 "}, None)]
    events += [_chunk({"content": f"tok{i} "}, None) for i in range(1, chunks - 1)]
    events.append(_chunk({"content": "end"}, "stop"))
    if include_usage:
        events.append({**_chunk({}, None), "choices": [], "usage": USAGE})
    pieces = [_http_chunk(b"data: " + orjson.dumps(e) + b"\n\n") for e in events]
    pieces.append(_http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return [STREAM_HEAD, *pieces]


@dataclass(frozen=True, slots=True)
class Paced:
    """A stream sent one piece per write, ``interval`` seconds apart."""

    pieces: list[bytes]
    interval: float


class Responses:
    """Every answer the mock gives, rendered once at startup."""

    def __init__(self, chunks: int) -> None:
        self.completion = _json("200 OK", _completion())
        self.stream_pieces = _stream(chunks, include_usage=False)
        self.stream_with_usage_pieces = _stream(chunks, include_usage=True)
        self.stream = b"".join(self.stream_pieces)
        self.stream_with_usage = b"".join(self.stream_with_usage_pieces)
        self.models = _json(
            "200 OK",
            {
                "object": "list",
                "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "bench"}],
            },
        )
        self.health = _json("200 OK", {"status": "ok"})
        self.not_found = _json(
            "404 Not Found",
            {
                "error": {
                    "message": "not found",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        )
        self.bad_request = _json(
            "400 Bad Request",
            {
                "error": {
                    "message": "body is not JSON",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        )

    def for_chat(self, body: bytes) -> bytes | Paced:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self.bad_request
        if not isinstance(request, dict) or not request.get("stream"):
            return self.completion
        usage = (request.get("stream_options") or {}).get("include_usage")
        pace = request.get("mock_pace_ms")
        if pace:
            pieces = self.stream_with_usage_pieces if usage else self.stream_pieces
            return Paced(pieces, float(pace) / 1000)
        return self.stream_with_usage if usage else self.stream


def _content_length(head: bytes) -> int:
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    end = lowered.find(b"\r\n", at + 2)
    return int(lowered[at + 17 : end if end >= 0 else None])


class MockProtocol(asyncio.Protocol):
    """One client connection: parse requests (pipelining allowed), write answers."""

    def __init__(self, responses: Responses) -> None:
        self.responses = responses
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        while True:
            end = buffer.find(HEADER_END)
            if end < 0:
                break
            head = buffer[:end]
            start = end + 4
            stop = start + _content_length(head)
            if len(buffer) < stop:
                break
            answer = self.answer(head, buffer[start:stop])
            if isinstance(answer, Paced):
                self.send_paced(answer.pieces, answer.interval)
            else:
                assert self.transport is not None
                self.transport.write(answer)
            buffer = buffer[stop:]
        self.buffer = buffer

    def send_paced(self, pieces: list[bytes], interval: float) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        self.transport.write(pieces[0])
        if len(pieces) > 1:
            loop = asyncio.get_running_loop()
            loop.call_later(interval, self.send_paced, pieces[1:], interval)

    def answer(self, head: bytes, body: bytes) -> bytes | Paced:
        line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
        parts = line.split(b" ")
        method, path = parts[0], parts[1] if len(parts) > 1 else b"/"
        if method == b"POST" and path == b"/v1/chat/completions":
            return self.responses.for_chat(body)
        if method == b"GET" and path == b"/v1/models":
            return self.responses.models
        if method == b"GET" and path == b"/health":
            return self.responses.health
        return self.responses.not_found


async def serve(host: str, port: int, chunks: int) -> None:
    responses = Responses(chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: MockProtocol(responses), host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per stream")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.chunks))


if __name__ == "__main__":
    main()
