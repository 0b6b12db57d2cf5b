"""Target health as pure logic (no HTTP): breaker rules, what each kind of
failed attempt says about a backend, and active health checks."""

from __future__ import annotations

import time
from typing import Any

from adapters.errors import InvalidRequestError, UpstreamError, UpstreamStatusError
from gateway.config.schema import BreakerConfig
from gateway.routing.health import HealthChecker, OutcomeWindow, TargetHealth, retry_after_seconds
from gateway.routing.target import Target


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
            self.answers: list[str | None] = ["unreachable", None, "HTTP 503", "HTTP 503", None]

        async def health(self) -> str | None:
            return self.answers.pop(0)

    adapter: Any = Flaky()
    target = Target("t", adapter, "m", TargetHealth("t", BreakerConfig()))
    checker = HealthChecker([target], interval=1, misses=2)
    seen = []
    for _ in range(5):
        await checker.check_once()
        seen.append((target.health.checked_healthy, target.health.check_error))
    # One miss changes nothing; two in a row mark it down; one success brings it back.
    assert seen == [(None, None), (True, None), (True, None), (False, "HTTP 503"), (True, None)]


def test_a_refused_request_is_not_held_against_the_backend() -> None:
    health = TargetHealth("t", BreakerConfig(failures=2, error_ratio=None))
    health.record_error(UpstreamError("connection reset"))
    health.record_error(InvalidRequestError("bad field", param="messages"))
    health.record_error(UpstreamError("connection reset"))
    # The 400 in between answered: the two resets are not consecutive.
    assert (health.state, health.failures) == ("closed", 2)
    health.record_error(UpstreamError("connection reset"))
    assert health.state == "open" and health.last_error == "connection reset"


def test_a_rate_limited_backend_rests_as_long_as_it_asked() -> None:
    health = TargetHealth("t", BreakerConfig(failures=1, error_ratio=None))
    limited = UpstreamStatusError(429, "slow down", headers={"Retry-After": "30"})
    before = time.monotonic()
    health.record_error(limited)
    assert health.state == "closed" and health.failures == 0
    assert 29 < health.cooling_until - before <= 30.5
    assert not health.usable(time.monotonic())


def test_retry_after_reads_seconds_and_ignores_dates() -> None:
    def error(value: str) -> UpstreamStatusError:
        return UpstreamStatusError(503, "busy", headers={"Retry-After": value})

    assert retry_after_seconds(error("2.5")) == 2.5
    assert retry_after_seconds(error("-3")) == 0.0
    assert retry_after_seconds(error("Wed, 21 Oct 2026 07:28:00 GMT")) is None
    assert retry_after_seconds(UpstreamError("no header")) is None


def test_the_outcome_window_forgets_what_is_older_than_its_span() -> None:
    window = OutcomeWindow()
    for index in range(100_000):  # 100,000 attempts in 10 s, every tenth failing
        window.add(1000.0 + index / 10_000, ok=index % 10 != 0, span=30.0)
    assert (window.total, window.failed) == (100_000, 10_000)
    assert len(window._buckets) <= OutcomeWindow.BUCKETS + 1  # counts, not a list of attempts
    window.add(1025.0, ok=False, span=30.0)
    assert (window.total, window.failed) == (100_001, 10_001)
    window.add(1045.0, ok=True, span=30.0)  # 35 s after the burst began: all of it has aged out
    assert (window.total, window.failed) == (2, 1)
    window.clear()
    assert (window.total, window.failed) == (0, 0)
