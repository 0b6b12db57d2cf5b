"""Balancing strategies and breaker rules as pure logic (no HTTP)."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from gateway.balancing import RoundRobin, SessionAffinity, WeightedRandom
from gateway.config import BreakerConfig
from gateway.health import HealthChecker, TargetHealth
from gateway.router import Target


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
        SessionAffinity(three, random.Random(0)),
        SessionAffinity(four, random.Random(0)),
    )
    sessions = [f"session-{i}" for i in range(2000)]
    moved = sum(before.order(three, s)[0].name != after.order(four, s)[0].name for s in sessions)
    # Ideal is 1/4 (the new target's share); a modulo hash would move about 3/4.
    assert 0.15 * len(sessions) < moved < 0.35 * len(sessions)
    # Every moved session moved to the new target, none between old ones.
    assert all(
        after.order(four, s)[0].name in (before.order(three, s)[0].name, "d") for s in sessions
    )


def test_weighted_random_follows_weights() -> None:
    pool = targets("a") + targets("b", weight=3.0)
    balancer = WeightedRandom(pool, random.Random(1))
    picks = Counter(balancer.order(pool, None)[0].name for _ in range(4000))
    assert 0.72 < picks["b"] / 4000 < 0.78


def test_smooth_round_robin_interleaves() -> None:
    pool = targets("a", weight=2.0) + targets("b")
    rr = RoundRobin(pool, random.Random(0))
    assert [rr.order(pool, None)[0].name for _ in range(6)] == ["a", "b", "a", "a", "b", "a"]


def test_breaker_opens_on_error_ratio_over_the_window() -> None:
    config = BreakerConfig(failures=100, error_ratio=0.5, window=30, min_requests=10, cooldown=60)
    health = TargetHealth("t", config)
    for index in range(20):
        # Alternating outcomes never make 100 consecutive failures...
        if index % 2:
            health.record_failure("boom")
        else:
            health.record_success()
    # ...but half of 20 outcomes failed: the ratio rule opened it.
    assert health.state == "open"
    assert not health.usable(time.monotonic())


def test_breaker_ratio_needs_min_requests() -> None:
    config = BreakerConfig(failures=100, error_ratio=0.5, window=30, min_requests=10, cooldown=60)
    health = TargetHealth("t", config)
    for _ in range(4):
        health.record_failure("boom")
    assert health.state == "closed"  # 4 of 4 failed, but 4 < min_requests


def test_half_open_admits_one_probe() -> None:
    health = TargetHealth("t", BreakerConfig(failures=1, error_ratio=None, cooldown=0))
    health.record_failure("boom")
    assert health.state == "open"
    now = time.monotonic()
    assert health.usable(now) and health.state == "half-open"
    health.probe_in_flight = True
    assert not health.usable(now)  # a second request waits for the probe's outcome
    health.record_success()
    assert health.state == "closed" and health.usable(now)


async def test_one_missed_health_check_is_not_an_outage() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.answers = [False, True, False, False, True]

        async def health(self) -> bool:
            return self.answers.pop(0)

    adapter: Any = Flaky()
    target = Target("t", adapter, "m", TargetHealth("t", BreakerConfig()))
    checker = HealthChecker([target], interval=1, misses=2)
    seen = []
    for _ in range(5):
        await checker.check_once()
        seen.append(target.health.checked_healthy)
    # One miss changes nothing; two in a row mark it down; one success brings it back.
    assert seen == [None, True, True, False, True]
