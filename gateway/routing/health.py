"""Per-target health: circuit breaker, in-flight count and admission queue,
latency EWMA, and the counts shown at ``GET /v1/gateway/targets``.

One ``TargetHealth`` exists per backend (provider + upstream model, or
engine), shared by every public model that routes to it, so a backend that
fails for one model is avoided for all of them.

Breaker states::

    closed --(N consecutive failures, or error ratio over the window)--> open
    open --(cooldown elapsed)--> half-open: exactly one probe request goes through
    half-open --probe succeeds--> closed        half-open --probe fails--> open
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from adapters.errors import GatewayError, RateLimitError, UpstreamStatusError
from gateway.config.schema import BreakerConfig

BreakerState = Literal["closed", "open", "half-open"]


class OutcomeWindow:
    """How many attempts, and how many failed, over the last ``span`` seconds.

    Counted in buckets of ``span / BUCKETS`` seconds, so memory and the time
    per outcome stay constant however many requests a second a target serves
    (the window's edge is as coarse as one bucket)."""

    BUCKETS = 20
    __slots__ = ("_buckets", "failed", "total")

    def __init__(self) -> None:
        self._buckets: deque[list[int]] = deque()  # [bucket number, attempts, failures]
        self.total = 0
        self.failed = 0

    def add(self, now: float, ok: bool, span: float) -> None:
        number = int(now * self.BUCKETS / span)
        buckets = self._buckets
        if buckets and buckets[-1][0] == number:
            bucket = buckets[-1]
        else:
            bucket = [number, 0, 0]
            buckets.append(bucket)
        bucket[1] += 1
        self.total += 1
        if not ok:
            bucket[2] += 1
            self.failed += 1
        while buckets[0][0] <= number - self.BUCKETS:
            _, attempts, failures = buckets.popleft()
            self.total -= attempts
            self.failed -= failures

    def clear(self) -> None:
        self._buckets.clear()
        self.total = self.failed = 0


@dataclass(slots=True, eq=False)
class TargetHealth:
    name: str
    breaker: BreakerConfig
    max_concurrency: int | None = None
    max_queue: int = 0
    queue_timeout: float = 0.0

    state: BreakerState = "closed"
    opened_at: float = 0.0
    probe_in_flight: bool = False
    consecutive_failures: int = 0
    # Recent outcomes, counted per time bucket, for the error-ratio rule.
    outcomes: OutcomeWindow = field(default_factory=OutcomeWindow)
    # Not before this monotonic time (an upstream's Retry-After).
    cooling_until: float = 0.0
    # Result of the last active health check (None: never checked), and what it found.
    checked_healthy: bool | None = None
    check_error: str | None = None

    in_flight: int = 0
    waiting: int = 0
    requests: int = 0
    failures: int = 0
    last_error: str | None = None
    # Moving averages of streams' time to first token and of non-streamed
    # answers' latency, and when each was last measured.
    ewma_ttft: float | None = None
    ttft_sampled_at: float = 0.0
    ewma_latency: float | None = None
    latency_sampled_at: float = 0.0
    _slot_freed: asyncio.Event | None = None

    # ---- whether to send it traffic -----------------------------------------

    def usable(self, now: float) -> bool:
        """May a new request be sent here now? (Half-open admits a single probe.)"""
        if self.checked_healthy is False or now < self.cooling_until:
            return False
        if self.state == "closed":
            return True
        if self.state == "open" and now - self.opened_at >= self.breaker.cooldown:
            self.state = "half-open"
        return self.state == "half-open" and not self.probe_in_flight

    def usable_in(self, now: float) -> float | None:
        """Seconds until a request may be sent here (0: now); None when only a
        health check can tell (the backend failed its checks)."""
        if self.checked_healthy is False:
            return None
        wait = max(0.0, self.cooling_until - now)
        if self.state == "open":
            wait = max(wait, self.opened_at + self.breaker.cooldown - now)
        elif self.state == "half-open" and self.probe_in_flight:
            return None
        return wait

    def has_capacity(self) -> bool:
        return self.max_concurrency is None or self.in_flight < self.max_concurrency

    # ---- admission ----------------------------------------------------------

    async def acquire(self) -> None:
        """Take a concurrency slot, waiting in the bounded queue if need be."""
        if not self.has_capacity():
            await self._wait_for_slot()
        self.in_flight += 1
        self.requests += 1
        if self.state == "half-open":
            self.probe_in_flight = True

    async def _wait_for_slot(self) -> None:
        if self.waiting >= self.max_queue:
            raise self._overloaded()
        if self._slot_freed is None:
            self._slot_freed = asyncio.Event()
        deadline = time.monotonic() + self.queue_timeout
        self.waiting += 1
        try:
            while not self.has_capacity():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._overloaded()
                self._slot_freed.clear()
                try:
                    await asyncio.wait_for(self._slot_freed.wait(), remaining)
                except TimeoutError:
                    raise self._overloaded() from None
        finally:
            self.waiting -= 1

    def _overloaded(self) -> RateLimitError:
        return RateLimitError(
            f"Backend {self.name} is at its concurrency limit; try again shortly.",
            code="backend_overloaded",
            headers={"Retry-After": "1"},
        )

    def release(self) -> None:
        self.in_flight -= 1
        if self._slot_freed is not None and self.waiting:
            self._slot_freed.set()

    # ---- outcomes -----------------------------------------------------------

    def record_ttft(self, seconds: float, now: float) -> None:
        """A stream's time to its first chunk: what the ``latency`` strategy ranks by."""
        self.ewma_ttft = _ewma(self.ewma_ttft, seconds)
        self.ttft_sampled_at = now

    def record_success(self, latency: float | None = None) -> None:
        """An attempt that got its answer; ``latency``: a whole non-streamed
        answer's time (ranked by only where no stream has given a TTFT)."""
        if self.state == "open":
            return  # a late answer to a request sent before the breaker opened
        self.consecutive_failures = 0
        if self.state == "half-open":
            self.state = "closed"
            self.probe_in_flight = False
            self.outcomes.clear()
        if self.breaker.error_ratio is not None:
            self._remember(True)
        if latency is not None:
            self.ewma_latency = _ewma(self.ewma_latency, latency)
            self.latency_sampled_at = time.monotonic()

    def record_error(self, exc: GatewayError) -> None:
        """What a failed attempt says about the backend."""
        if not exc.retryable:
            self.record_success()  # the backend answered; the request was at fault
        elif isinstance(exc, UpstreamStatusError) and exc.upstream_status == 429:
            # Rate limited, not broken: rest it for as long as it asked.
            self.cooling_until = time.monotonic() + (retry_after_seconds(exc) or 1.0)
        else:
            self.record_failure(exc.message)

    def record_failure(self, message: str) -> None:
        now = time.monotonic()
        self.failures += 1
        self.last_error = message
        self.consecutive_failures += 1
        if self.state == "half-open":
            self._open(now)
            return
        if self.consecutive_failures >= self.breaker.failures or self._ratio_tripped(now):
            self._open(now)

    def _open(self, now: float) -> None:
        self.state = "open"
        self.opened_at = now
        self.probe_in_flight = False

    def _remember(self, ok: bool) -> None:
        self.outcomes.add(time.monotonic(), ok, self.breaker.window)

    def _ratio_tripped(self, now: float) -> bool:
        if self.breaker.error_ratio is None:
            return False
        window = self.outcomes
        window.add(now, False, self.breaker.window)
        if window.total < self.breaker.min_requests:
            return False
        return window.failed / window.total >= self.breaker.error_ratio

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state,
            "healthy": self.checked_healthy,
            "health_check_error": self.check_error,
            "in_flight": self.in_flight,
            "queued": self.waiting,
            "requests": self.requests,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "ewma_ttft_ms": _ms(self.ewma_ttft),
            "ewma_latency_ms": _ms(self.ewma_latency),
        }


class HealthChecker:
    """Active checks: every ``interval`` seconds each backend is asked whether
    it answers. A target whose backend missed ``misses`` checks in a row is
    skipped until one succeeds: one slow answer on a busy host is not an outage."""

    def __init__(
        self, targets: Iterable[HealthCheckTarget], interval: float, misses: int = 2
    ) -> None:
        self._by_adapter: dict[int, tuple[HealthCheckTarget, list[TargetHealth]]] = {}
        for target in targets:
            entry = self._by_adapter.setdefault(id(target.adapter), (target, []))
            entry[1].append(target.health)
        self._interval = interval
        self._misses_allowed = misses
        self._missed: dict[int, int] = {}

    async def check_once(self) -> None:
        keys = list(self._by_adapter)
        results = await asyncio.gather(
            *(self._by_adapter[key][0].adapter.health() for key in keys), return_exceptions=True
        )
        for key, result in zip(keys, results, strict=True):
            problem = _problem(result)
            missed = 0 if problem is None else self._missed.get(key, 0) + 1
            self._missed[key] = missed
            if missed == 0 or missed >= self._misses_allowed:
                for health in self._by_adapter[key][1]:
                    health.checked_healthy = missed == 0
                    health.check_error = problem

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check_once()


def _ewma(average: float | None, sample: float, alpha: float = 0.3) -> float:
    return sample if average is None else alpha * sample + (1 - alpha) * average


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _problem(result: object) -> str | None:
    """What a health check found wrong (None: healthy)."""
    if isinstance(result, BaseException):
        return f"health check failed: {type(result).__name__}"
    return result if isinstance(result, str) else None


class HealthCheckTarget(Protocol):
    health: TargetHealth

    @property
    def adapter(self) -> HealthCheckable: ...


class HealthCheckable(Protocol):
    async def health(self) -> str | None: ...


def retry_after_seconds(error: GatewayError) -> float | None:
    """The error's Retry-After header in seconds, when it has a usable one."""
    value = error.headers.get("Retry-After")
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None
