"""Graceful drain on SIGTERM (gateway/api/drain.py): a rolling restart loses
nothing. Streams in flight finish within the drain time; /ready says 503 at
once; what is still running at the deadline ends cleanly."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.helpers import FakeUpstream, Gateway

SLOW = "[slow] " + " ".join(f"w{i}" for i in range(8))  # about 1.8 s as a stream


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[FakeUpstream]:
    """An upstream of the test's own: the requests it counts are this test's."""
    server = FakeUpstream(tmp_path, "drained")
    yield server
    server.stop()


def start(tmp: Path, upstream: FakeUpstream, drain_seconds: float) -> Gateway:
    config = {
        "server": {"drain_seconds": drain_seconds},
        "providers": {"up": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "up", "model": "m"}]}},
    }
    return Gateway(tmp, config)


async def streams(gateway: Gateway, count: int, text: str) -> tuple[list[str], list[float]]:
    """``count`` concurrent streams; their bodies, and when each first chunk came."""
    started: list[float] = []
    body: dict[str, Any] = {
        "model": "chat",
        "messages": [{"role": "user", "content": text}],
        "stream": True,
    }
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30, limits=limits) as client:

        async def one() -> str:
            async with client.stream("POST", "/chat/completions", json=body) as answer:
                text = ""
                async for piece in answer.aiter_text():
                    if not text:
                        started.append(time.monotonic())
                    text += piece
                return text

        return list(await asyncio.gather(*(one() for _ in range(count)))), started


def refused(gateway: Gateway) -> bool:
    """Whether a new connection is refused."""
    try:
        socket.create_connection(("127.0.0.1", gateway.port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_sigterm_during_50_streams_loses_none(tmp_path: Path, upstream: FakeUpstream) -> None:
    gateway = start(tmp_path, upstream, drain_seconds=20)
    probe = httpx.Client(base_url=gateway.url, timeout=5)  # a load balancer's kept-alive probe
    try:
        assert probe.get("/ready").status_code == 200
        task = asyncio.create_task(streams(gateway, 50, SLOW))
        while upstream_streaming(upstream) < 50:
            await asyncio.sleep(0.05)
        gateway.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        answer = await asyncio.to_thread(probe.get, "/ready")
        assert answer.status_code == 503 and answer.json() == {"status": "draining"}
        assert refused(gateway)  # no new client is taken
        bodies, _ = await task
        for text in bodies:
            assert text.endswith("data: [DONE]\n\n") and '"error"' not in text, text[-300:]
            assert '"finish_reason":"stop"' in text
        assert gateway.proc.wait(timeout=15) == 0
    finally:
        probe.close()
        gateway.stop()


def upstream_streaming(upstream: FakeUpstream) -> int:
    return sum(1 for r in upstream.requests() if (r["body"] or {}).get("stream"))


async def test_what_outlasts_the_drain_ends_cleanly(tmp_path: Path, upstream: FakeUpstream) -> None:
    gateway = start(tmp_path, upstream, drain_seconds=0.5)
    try:
        long_text = "[slow] " + " ".join(f"w{i}" for i in range(40))  # about 8 s
        task = asyncio.create_task(streams(gateway, 5, long_text))
        while len(upstream.requests()) < 5:
            await asyncio.sleep(0.05)
        upstream.faults({"delay": 10})  # a non-streamed answer that would take 10 s
        plain = asyncio.create_task(
            asyncio.to_thread(
                httpx.post,
                gateway.base_url + "/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
                timeout=30,
            )
        )
        while len(upstream.requests()) < 6:
            await asyncio.sleep(0.05)
        signalled = time.monotonic()
        gateway.proc.send_signal(signal.SIGTERM)
        bodies, _ = await task
        for text in bodies:
            # Never a silently short stream: the last event before [DONE] says why.
            events = [e for e in text.split("\n\n") if e]
            assert events[-1] == "data: [DONE]"
            error = orjson.loads(events[-2].removeprefix("data: "))["error"]
            assert error["type"] == "service_unavailable" and "shutting down" in error["message"]
        answer = await plain
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert answer.json()["error"]["type"] == "service_unavailable"
        assert time.monotonic() - signalled < 5  # the drain time, not the streams' 8 s
        assert gateway.proc.wait(timeout=15) == 0
    finally:
        gateway.stop()


async def test_a_responses_stream_outlasting_the_drain_ends_with_response_failed(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gateway = start(tmp_path, upstream, drain_seconds=0.5)
    body = {
        "model": "chat",
        "input": "[slow] " + " ".join(f"w{i}" for i in range(40)),
        "stream": True,
    }
    try:
        async with (
            httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as client,
            client.stream("POST", "/responses", json=body) as answer,
        ):
            lines = answer.aiter_lines()
            events: list[str] = []
            async for line in lines:
                if line.startswith("event: "):
                    events.append(line.removeprefix("event: "))
                    if line.endswith("output_text.delta"):
                        break
            gateway.proc.send_signal(signal.SIGTERM)
            async for line in lines:
                if line.startswith("event: "):
                    events.append(line.removeprefix("event: "))
        assert events[-2:] == ["error", "response.failed"], events[-5:]
        assert gateway.proc.wait(timeout=15) == 0
    finally:
        gateway.stop()
