"""The gap a mid-stream failover adds to a token stream.

Two OpenAI-compatible upstreams that continue an answer (the test fake, with
``continue_final_message``) send each chunk ``--pace-ms`` apart; the first
drops its connection after ``--after`` chunks. Through the gateway, the
client sees one stream: this measures, per stream, the time from the last
chunk before the break to the first one after it, against the stream's
ordinary gap between chunks.

  python -m tests.benchmarks.failover [--streams 100] [--after 5] [--pace-ms 20]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from tests.helpers import FakeUpstream, Gateway

QUESTION = " ".join(f"w{i}" for i in range(20))


def gaps(gateway: Gateway, upstream: FakeUpstream, after: int, pace: float) -> tuple[float, float]:
    """One stream: (the gap across the splice, its median ordinary gap), in ms."""
    upstream.faults({"drop_after": after, "drip": pace})
    body = {
        "model": "pair",
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": True,
    }
    arrivals: list[float] = []
    with httpx.stream("POST", gateway.base_url + "/chat/completions", json=body, timeout=60) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = orjson.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                arrivals.append(time.perf_counter())
    # Chunk ``after`` (0-based) is the continuation's first: step ``after - 1`` spans the break.
    steps = [(b - a) * 1000 for a, b in itertools.pairwise(arrivals)]
    splice = steps[after - 1]
    ordinary = statistics.median(steps[: after - 1] + steps[after:])
    return splice, ordinary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--after", type=int, default=5)
    parser.add_argument("--pace-ms", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vllm-gateway-failover-") as tmp:
        first = FakeUpstream(Path(tmp), "twin")
        second = FakeUpstream(Path(tmp), "twin")

        def provider(server: FakeUpstream) -> dict[str, object]:
            return {"kind": "openai", "base_url": server.base_url, "continuation": True}

        config = {
            "routing": {"health_check_interval": 0, "breaker": {"failures": 1_000_000}},
            "providers": {"first": provider(first), "second": provider(second)},
            "models": {
                "pair": {
                    "targets": [
                        {"provider": "first", "model": "m", "tier": 1},
                        {"provider": "second", "model": "m", "tier": 2},
                    ]
                }
            },
        }
        gateway = Gateway(Path(tmp), config)
        pace = args.pace_ms / 1000
        try:
            second.faults(*[{"drip": pace}] * args.streams)
            measured = [gaps(gateway, first, args.after, pace) for _ in range(args.streams)]
        finally:
            gateway.stop()
            first.stop()
            second.stop()
    splices = sorted(s for s, _ in measured)
    ordinary = statistics.median(o for _, o in measured)
    added = [s - ordinary for s in splices]
    print(f"streams: {args.streams}, chunks {args.pace_ms:g} ms apart, break after {args.after}")
    print(
        f"gap across the splice: p50 {statistics.median(splices):.1f} ms, "
        f"p99 {splices[int(len(splices) * 0.99) - 1]:.1f} ms"
    )
    print(f"ordinary gap: p50 {ordinary:.1f} ms")
    print(f"added by the failover: p50 {statistics.median(added):.1f} ms")


if __name__ == "__main__":
    main()
