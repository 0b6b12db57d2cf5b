"""SSE exactly as OpenAI frames it, flushed chunk by chunk, and cancelled with the client."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.helpers import FakeUpstream, Gateway, ServerProcess, free_port


def raw_stream(gateway: Gateway, body: dict) -> tuple[bytes, list[float]]:
    """POST over a plain socket; return the raw response and when each read arrived."""
    payload = orjson.dumps(body)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: "
            + str(len(payload)).encode()
            + b"\r\n\r\n"
            + payload
        )
        data, arrivals = b"", []
        while chunk := sock.recv(65536):
            data += chunk
            arrivals.append(time.monotonic())
    return data, arrivals


def http_chunks(data: bytes) -> tuple[bytes, list[bytes]]:
    """The head of a chunked HTTP/1.1 response and its body's chunks."""
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    chunks = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        chunks.append(rest[:size])
        rest = rest[size + 2 :]
    return head, chunks


def test_sse_byte_format(gateway: Gateway) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "a b"}], "stream": True}
    data, _ = raw_stream(gateway, body)
    head, chunks = http_chunks(data)
    assert b"Content-Type: text/event-stream" in head
    frames = b"".join(chunks).split(b"\n\n")
    assert frames[-1] == b"" and frames[-2] == b"data: [DONE]"
    for frame in frames[:-2]:
        assert frame.startswith(b"data: {") and b"\n" not in frame
        chunk = orjson.loads(frame[6:])
        assert chunk["object"] == "chat.completion.chunk" and chunk["model"] == "chat"
    contents = [orjson.loads(f[6:])["choices"][0]["delta"].get("content") for f in frames[:-2]]
    assert contents == ["alpha:", " a", " b", None]


def test_chunks_are_flushed_as_they_arrive(gateway: Gateway) -> None:
    # [slow] makes the upstream wait 0.2 s between chunks: a buffering gateway
    # would deliver everything at the end, in one read.
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "[slow] a b c"}],
        "stream": True,
    }
    data, arrivals = raw_stream(gateway, body)
    assert data.count(b"data: ") == 7  # 5 words, the stop chunk, [DONE]
    assert len(arrivals) >= 4
    assert arrivals[-1] - arrivals[0] >= 0.5


def test_client_disconnect_cancels_the_upstream(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reset()
    words = " ".join(f"w{i}" for i in range(50))
    payload = orjson.dumps(
        {
            "model": "chat",
            "messages": [{"role": "user", "content": f"[slow] {words}"}],
            "stream": True,
        }
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
        received = b""
        while b"data: " not in received:  # the stream is under way
            received += sock.recv(65536)
    hung_up = time.monotonic()
    deadline = hung_up + 5
    while not upstream.events() and time.monotonic() < deadline:
        time.sleep(0.05)
    events = upstream.events()
    assert events and events[0]["event"] == "cancelled"
    # 50 words at 0.2 s each would take 10 s: the upstream stopped long before.
    assert time.monotonic() - hung_up < 5


@pytest.fixture(scope="module")
def burst_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway before the benchmark's mock, which sends a whole stream in one write."""
    tmp: Path = tmp_path_factory.mktemp("burst")
    port = free_port()
    args = [sys.executable, "-m", "tests.benchmarks.mock_upstream", "--port", str(port)]
    mock = ServerProcess([*args, "--chunks", "8"], port, tmp / "mock.log")
    config = {
        "providers": {"mock": {"kind": "openai", "base_url": f"{mock.url}/v1"}},
        "models": {"chat": {"targets": [{"provider": "mock", "model": "mock-model"}]}},
    }
    gateway = Gateway(tmp, config)
    yield gateway
    gateway.stop()
    mock.stop()


def test_a_burst_that_arrived_together_leaves_in_one_write(burst_gateway: Gateway) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    _, chunks = http_chunks(raw_stream(burst_gateway, body)[0])
    # One HTTP chunk: the eight events, the usage chunk asked for by the
    # gateway dropped (the client did not ask), and [DONE].
    assert len(chunks) == 1
    frames = chunks[0].split(b"\n\n")
    assert frames[-2:] == [b"data: [DONE]", b""]
    events = [orjson.loads(frame[6:]) for frame in frames[:-2]]
    assert len(events) == 8
    assert {event["model"] for event in events} == {"chat"}
    assert all(event["choices"] for event in events)
