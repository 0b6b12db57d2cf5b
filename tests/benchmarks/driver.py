"""The load driver: closed loop, fixed concurrency, one keep-alive connection
per worker, warm-up excluded. Run as its own process (the orchestrator pins it
to a core); it prints JSON lines: ``{"checkpoint": n}`` as the completed count
passes each ``--checkpoints`` value, then ``{"result": {...}}``.

``python -m tests.benchmarks.driver --url URL --body JSON --concurrency 64
--duration 20 --warmup-seconds 2``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import uvloop

from tests.benchmarks.http_client import ClientConnection, Reply, connect, render_request
from tests.benchmarks.system import CpuTimes, busy_percent, cpu_times


@dataclass(slots=True)
class Plan:
    host: str
    port: int
    request: bytes
    concurrency: int
    requests: int | None  # count mode: measured requests after `warmup`
    warmup: int
    duration: float | None  # time mode: measured seconds after `warmup_seconds`
    warmup_seconds: float
    checkpoints: list[int]
    count_tokens: bool
    spread_start: float = 0.0  # worker i starts i/concurrency of this many seconds late


@dataclass(slots=True)
class Tally:
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    events: int = 0
    completion_tokens: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    issued: int = 0
    completed: int = 0
    window: list[float] = field(default_factory=list)  # measured [start, end]
    cpu: list[CpuTimes] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)


def completion_tokens(body: bytes) -> int:
    """completion_tokens from a JSON body or from the usage event of an SSE body."""
    if not body.startswith(b"data:"):
        return int(orjson.loads(body)["usage"]["completion_tokens"])
    for line in reversed(body.split(b"\n")):
        if line.startswith(b"data: {") and b'"completion_tokens"' in line:
            return int(orjson.loads(line[6:])["usage"]["completion_tokens"])
    raise ValueError("stream carried no usage")


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Run:
    """Workers sharing one plan and one tally."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.tally = Tally()
        self.deadline = float("inf")
        self.measure_from = 0.0

    def measured(self, reply: Reply, ticket: int) -> bool:
        if self.plan.requests is not None:
            return ticket >= self.plan.warmup
        # Time mode counts what completes inside the window, whenever it began:
        # long requests (engine streams) are then not undercounted at the edges.
        return self.measure_from <= reply.finished <= self.deadline

    def record(self, reply: Reply) -> None:
        tally = self.tally
        if reply.status != 200 or reply.error_event:
            tally.error(f"HTTP {reply.status}" + (" error event" if reply.error_event else ""))
            return
        tally.latencies.append(reply.finished - reply.started)
        tally.ttfts.append(reply.first_byte - reply.started)
        tally.events += reply.events
        if self.plan.count_tokens:
            tally.completion_tokens += completion_tokens(reply.body)

    def next_ticket(self) -> int | None:
        plan, tally = self.plan, self.tally
        if plan.requests is not None:
            if tally.issued >= plan.warmup + plan.requests:
                return None
            if tally.issued == plan.warmup:
                self.start_window()
        elif time.perf_counter() >= self.deadline:
            return None
        tally.issued += 1
        return tally.issued - 1

    def start_window(self) -> None:
        self.tally.window = [time.perf_counter()]
        self.tally.cpu = [cpu_times()]

    def completed_one(self) -> None:
        self.tally.completed += 1
        if self.tally.completed in self.plan.checkpoints:
            print(orjson.dumps({"checkpoint": self.tally.completed}).decode(), flush=True)

    async def worker(self, number: int) -> None:
        plan = self.plan
        if plan.spread_start:
            await asyncio.sleep(plan.spread_start * number / plan.concurrency)
        conn: ClientConnection = await connect(plan.host, plan.port, plan.count_tokens)
        while (ticket := self.next_ticket()) is not None:
            try:
                reply = await conn.request(plan.request)
            except ConnectionError as exc:
                self.tally.error(str(exc))
                conn = await connect(plan.host, plan.port, plan.count_tokens)
                continue
            self.completed_one()
            if self.measured(reply, ticket):
                self.record(reply)
        assert conn.transport is not None
        conn.transport.close()

    async def run(self) -> dict[str, Any]:
        plan = self.plan
        loop = asyncio.get_running_loop()
        if plan.duration is not None:
            self.measure_from = time.perf_counter() + plan.warmup_seconds
            self.deadline = self.measure_from + plan.duration
            loop.call_later(plan.warmup_seconds, self.start_window)
        await asyncio.gather(*(self.worker(number) for number in range(plan.concurrency)))
        self.tally.window.append(time.perf_counter())
        self.tally.cpu.append(cpu_times())
        return self.summary()

    def summary(self) -> dict[str, Any]:
        tally = self.tally
        if self.plan.duration is not None:
            elapsed = self.plan.duration
        else:
            elapsed = tally.window[-1] - tally.window[0]
        done = len(tally.latencies)
        cpu = busy_percent(tally.cpu[0], tally.cpu[-1]) if len(tally.cpu) == 2 else {}
        ms = 1000.0
        return {
            "completed_total": tally.completed,  # warm-up included
            "requests": done,
            "errors": tally.errors,
            "error_samples": tally.error_samples,
            "seconds": round(elapsed, 3),
            "per_second": round(done / elapsed, 1) if elapsed else 0.0,
            "latency_ms": {
                "p50": round(percentile(tally.latencies, 0.50) * ms, 3),
                "p90": round(percentile(tally.latencies, 0.90) * ms, 3),
                "p99": round(percentile(tally.latencies, 0.99) * ms, 3),
                "max": round(max(tally.latencies, default=0.0) * ms, 3),
            },
            "ttft_ms": {
                "p50": round(percentile(tally.ttfts, 0.50) * ms, 3),
                "p99": round(percentile(tally.ttfts, 0.99) * ms, 3),
            },
            "events_per_reply": round(tally.events / done, 2) if done else 0.0,
            "completion_tokens": tally.completion_tokens,
            "tokens_per_second": round(tally.completion_tokens / elapsed, 1) if elapsed else 0.0,
            "cpu_busy": cpu,
        }


def parse_plan(argv: list[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="the JSON request body")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, help="measured requests (count mode)")
    parser.add_argument("--warmup", type=int, default=0, help="unmeasured requests first")
    parser.add_argument("--duration", type=float, help="measured seconds (time mode)")
    parser.add_argument("--warmup-seconds", type=float, default=0.0)
    parser.add_argument(
        "--spread-start", type=float, default=0.0, help="seconds over which workers start"
    )
    parser.add_argument("--checkpoints", default="", help="comma-separated completed counts")
    parser.add_argument("--count-tokens", action="store_true", help="sum usage.completion_tokens")
    args = parser.parse_args(argv)
    if (args.requests is None) == (args.duration is None):
        parser.error("give exactly one of --requests or --duration")
    url = urlsplit(args.url)
    assert url.hostname is not None and url.port is not None
    headers = {"Content-Type": "application/json"}
    headers.update(h.split(": ", 1) for h in args.header)
    return Plan(
        host=url.hostname,
        port=url.port,
        request=render_request(
            "POST", f"{url.hostname}:{url.port}", url.path, args.body.encode(), headers
        ),
        concurrency=args.concurrency,
        requests=args.requests,
        warmup=args.warmup,
        duration=args.duration,
        warmup_seconds=args.warmup_seconds,
        checkpoints=[int(c) for c in args.checkpoints.split(",") if c],
        count_tokens=args.count_tokens,
        spread_start=args.spread_start,
    )


def main(argv: list[str] | None = None) -> None:
    plan = parse_plan(argv)
    result = uvloop.run(Run(plan).run())
    sys.stdout.write(orjson.dumps({"result": result}).decode() + "\n")


if __name__ == "__main__":
    main()
