"""Hostile peers, as functions: each runs one attack on a running gateway
while ``/health`` is sampled, and returns what it measured (time, the
gateway's peak memory, ``/health`` latency, what the attacker got).

tests/gateway/api/test_hostile.py asserts on these; ``python -m
tests.benchmarks.hostile`` prints them, for any gateway checkout (to compare
before and after a change).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

WORD_PROMPT_BYTES = 4 * 1024 * 1024


@dataclass
class HealthSamples:
    """``/health`` latencies (ms) sampled every 20 ms during an attack."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def worst_ms(self) -> float:
        return max(self.latencies, default=float("inf"))


@contextmanager
def health_sampled(base: str) -> Iterator[HealthSamples]:
    """Sample ``base``/health on a thread of its own while the block runs."""
    samples = HealthSamples()
    stop = threading.Event()

    def sample() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    client.get(base + "/health").raise_for_status()
                    samples.latencies.append((time.perf_counter() - started) * 1000)
                except httpx.HTTPError:
                    samples.failures += 1
                stop.wait(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(60)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115 - read once, closed on exit
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


@dataclass
class Outcome:
    """What one attack measured."""

    seconds: float
    health: HealthSamples
    peak_growth_mb: float
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "peak_rss_growth_mb": round(self.peak_growth_mb, 1),
            "health_worst_ms": round(self.health.worst_ms, 1),
            "health_failures": self.health.failures,
            **self.details,
        }


def attack(base: str, pid: int, run: Callable[[], dict[str, Any]]) -> Outcome:
    before = peak_rss_mb(pid)
    with health_sampled(base) as health:
        started = time.perf_counter()
        details = run()
        seconds = time.perf_counter() - started
        time.sleep(0.1)  # one more sample after the attack
    return Outcome(seconds, health, peak_rss_mb(pid) - before, details)


# ---- hostile upstreams (the gateway's models point at tests/fakes/raw_http.py) ----


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def huge_line_stream(base: str, model: str, key: str | None = None) -> dict[str, Any]:
    """A stream whose first event is one 50 MB line, with no usage chunk."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    url = base + "/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=_auth(key), timeout=120) as answer:
        text = answer.read().decode(errors="replace")
    return {
        "status": answer.status_code,
        "ended_with_error_event": _error_event(text),
        "body": text[-400:],
    }


def compressed_answer(base: str, model: str, key: str | None = None) -> dict[str, Any]:
    """A non-streamed answer compressed by the upstream (a bomb, or raw deflate)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(base + "/v1/chat/completions", json=body, headers=_auth(key), timeout=120)
    return {"status": answer.status_code, "body": answer.text[:300]}


def _error_event(text: str) -> bool:
    events = [e for e in text.split("\n\n") if e.startswith("data: ")]
    return len(events) >= 2 and events[-1] == "data: [DONE]" and '"error"' in events[-2]


# ---- hostile clients --------------------------------------------------------------


def slow_headers(host: str, port: int, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` connections each sending their headers one byte a second;
    how many the gateway still holds after ``seconds``."""
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    sockets = [socket.create_connection((host, port), timeout=5) for _ in range(clients)]
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        for sock in sockets:
            with contextlib.suppress(OSError):  # closed by the gateway: that is the point
                sock.send(head[sent % len(head) : sent % len(head) + 1])
        sent += 1
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    held = sum(connection_state(sock)[0] for sock in sockets)
    for sock in sockets:
        sock.close()
    return {"clients": clients, "held_after": held}


def unfinished_headers(host: str, port: int, timeout: float) -> dict[str, Any]:
    """Half a request's headers, then silence: what the gateway answers, and when."""
    with socket.create_connection((host, port), timeout=timeout + 10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-")
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return {
        "after_seconds": round(time.monotonic() - started, 2),
        "status_line": head.split(b"\r\n")[0].decode(),
        "body": body.decode()[:300],
    }


def idle_connections(host: str, port: int, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` connections that never send a byte; how many are held after ``seconds``."""
    sockets = [socket.create_connection((host, port), timeout=5) for _ in range(clients)]
    time.sleep(seconds)
    held = sum(connection_state(sock)[0] for sock in sockets)
    for sock in sockets:
        sock.close()
    return {"clients": clients, "held_after": held}


def connection_state(sock: socket.socket) -> tuple[bool, bytes]:
    """Whether the gateway still holds the connection, and what it sent on it."""
    sock.setblocking(False)
    received = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return False, received  # closed by the gateway
            received += data
    except BlockingIOError:
        return True, received  # nothing more to read, and no end of file
    except OSError:
        return False, received  # reset by the gateway


def big_header(base: str, size: int = 64 * 1024) -> dict[str, Any]:
    answer = httpx.get(base + "/v1/models", headers={"X-Big": "a" * size}, timeout=30)
    return {"status": answer.status_code, "body": answer.text[:300]}


def malformed_request_line(host: str, port: int) -> dict[str, Any]:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"GARBAGE\x01 /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return {"status_line": head.split(b"\r\n")[0].decode(), "body": body.decode()[:300]}


def deep_nesting(base: str, model: str, depth: int = 254, key: str | None = None) -> dict[str, Any]:
    raw = b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "extra": %s%s}' % (
        model.encode(),
        b"[" * depth,
        b"]" * depth,
    )
    answer = httpx.post(
        base + "/v1/chat/completions",
        content=raw,
        headers={"Content-Type": "application/json", **_auth(key)},
        timeout=30,
    )
    return {"status": answer.status_code, "body": answer.text[:300]}


def one_word_prompt(base: str, model: str, key: str) -> dict[str, Any]:
    """A 4 MB prompt that is a single "word", from a key with a TPM limit."""
    body = orjson.dumps(
        {"model": model, "messages": [{"role": "user", "content": "a" * WORD_PROMPT_BYTES}]}
    )
    answer = httpx.post(
        base + "/v1/chat/completions",
        content=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        timeout=120,
    )
    return {"status": answer.status_code, "body": answer.text[:200]}
