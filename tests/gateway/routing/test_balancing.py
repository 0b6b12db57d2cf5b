"""Balancing strategies as pure logic (no HTTP)."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from gateway.config.schema import BreakerConfig
from gateway.routing.balancing import (
    Balancing,
    LowestLatency,
    RoundRobin,
    SessionAffinity,
    WeightedRandom,
)
from gateway.routing.call import Call
from gateway.routing.health import TargetHealth
from gateway.routing.target import Target

ANY = Call("chat", {"messages": [{"role": "user", "content": "Hi"}]})


def seeded(seed: int) -> Balancing:
    return Balancing(random.Random(seed))


def session(key: str) -> Call:
    return Call("chat", {}, session_key=key)


def targets(*names: str, weight: float = 1.0) -> list[Target]:
    adapter: Any = object()
    return [
        Target(name, adapter, "m", TargetHealth(name, BreakerConfig()), weight=weight)
        for name in names
    ]


def test_consistent_hashing_moves_few_sessions_when_a_target_is_added() -> None:
    three = targets("a", "b", "c")
    four = [*three, *targets("d")]
    before, after = (
        SessionAffinity(three, seeded(0)),
        SessionAffinity(four, seeded(0)),
    )
    sessions = [f"session-{i}" for i in range(2000)]
    first = {s: before.order(three, session(s))[0].name for s in sessions}
    then = {s: after.order(four, session(s))[0].name for s in sessions}
    moved = sum(first[s] != then[s] for s in sessions)
    # Ideal is 1/4 (the new target's share); a modulo hash would move about 3/4.
    assert 0.15 * len(sessions) < moved < 0.35 * len(sessions)
    # Every moved session moved to the new target, none between old ones.
    assert all(then[s] in (first[s], "d") for s in sessions)


def test_weighted_random_follows_weights() -> None:
    pool = targets("a") + targets("b", weight=3.0)
    balancer = WeightedRandom(pool, seeded(1))
    picks = Counter(balancer.order(pool, ANY)[0].name for _ in range(4000))
    assert 0.72 < picks["b"] / 4000 < 0.78


def test_smooth_round_robin_interleaves() -> None:
    pool = targets("a", weight=2.0) + targets("b")
    rr = RoundRobin(pool, seeded(0))
    assert [rr.order(pool, ANY)[0].name for _ in range(6)] == ["a", "b", "a", "a", "b", "a"]


def test_latency_ranks_by_time_to_first_token_and_learns_the_unmeasured_first() -> None:
    slow, fast, new = targets("slow", "fast", "new")
    now = time.monotonic()
    slow.health.record_ttft(0.8, now)
    fast.health.record_ttft(0.1, now)
    # A non-streamed answer's latency never stands in for a measured TTFT.
    fast.health.record_success(latency=5.0)
    balancer = LowestLatency([slow, fast, new], seeded(0))
    assert [t.name for t in balancer.order([slow, fast, new], ANY)] == ["new", "fast", "slow"]
    new.health.record_success(latency=0.3)  # only non-streamed answers: ranked by their latency
    assert [t.name for t in balancer.order([slow, fast, new], ANY)] == ["fast", "new", "slow"]


def test_latency_gives_a_target_measured_slow_another_chance_later() -> None:
    slow, fast = targets("slow", "fast")
    now = time.monotonic()
    slow.health.record_ttft(2.0, now - LowestLatency.STALE_AFTER - 1)
    fast.health.record_ttft(0.1, now)
    balancer = LowestLatency([slow, fast], seeded(0))
    assert balancer.order([slow, fast], ANY)[0] is slow  # its measure is stale: probe it
    slow.health.record_ttft(2.0, time.monotonic())
    assert balancer.order([slow, fast], ANY)[0] is fast
