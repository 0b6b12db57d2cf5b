"""Rate and concurrency limits, per caller and per model.

Each scope ("key:team-a", "model:chat") has a sliding 60-second window of
requests and tokens, kept in one-second slots, and a count of requests in
flight. A request is admitted when every scope it touches has room: one more
request under ``rpm``, its prompt tokens under ``tpm``, one more in flight
under ``max_concurrent``. Prompt tokens are charged on admission, the rest of
the usage (completion tokens) when the response is done, so a long answer can
overdraw a window and the next requests wait until it slides past.

``MemoryLimiter`` is the single-replica implementation; ``gateway.access.redis_limits``
keeps the same windows in Redis so several replicas share one limit.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from adapters.errors import RateLimitError
from gateway.config.access import Quota

WINDOW_SECONDS = 60
Refusal = Literal["requests", "tokens", "too_large", "concurrent"]


_UNLIMITED = sys.maxsize


@dataclass(slots=True, frozen=True)
class Scope:
    name: str  # the counters' name: "key:team-a", "jwt:alice", "model:chat"
    label: str  # for messages: "key 'team-a'", "model 'chat'"
    quota: Quota
    # The quota as plain ints (unset: no ceiling), so the admission check on
    # the request path is three comparisons.
    rpm: int = field(init=False)
    tpm: int = field(init=False)
    concurrent: int = field(init=False)
    rated: bool = field(init=False)  # has an rpm or tpm (so x-ratelimit-* headers)
    # The x-ratelimit-limit-* values ("": no such limit).
    rpm_text: str = field(init=False)
    tpm_text: str = field(init=False)

    def __post_init__(self) -> None:
        quota = self.quota
        object.__setattr__(self, "rpm_text", "" if quota.rpm is None else str(quota.rpm))
        object.__setattr__(self, "tpm_text", "" if quota.tpm is None else str(quota.tpm))
        object.__setattr__(self, "rpm", _UNLIMITED if quota.rpm is None else quota.rpm)
        object.__setattr__(self, "tpm", _UNLIMITED if quota.tpm is None else quota.tpm)
        concurrent = quota.max_concurrent
        object.__setattr__(self, "concurrent", _UNLIMITED if concurrent is None else concurrent)
        object.__setattr__(self, "rated", quota.rpm is not None or quota.tpm is not None)


@dataclass(slots=True)
class Usage:
    """One scope's counters: what its window holds now."""

    requests: int = 0
    tokens: int = 0
    in_flight: int = 0
    reset: float = 0.0  # seconds until the oldest counted slot leaves the window


@dataclass(slots=True, eq=False)
class Ticket:
    """An admitted request: what to release and charge when it is done."""

    scopes: tuple[Scope, ...]
    lease: str  # the Redis limiter's lease id (memory needs none: "")
    cost: int  # prompt tokens charged on admission
    usages: tuple[Usage, ...]  # each scope's counters after admission (for the headers)
    issuer: Limiter


class Limiter(Protocol):
    @property
    def status(self) -> str: ...

    async def acquire(self, scopes: Sequence[Scope], cost: int) -> Ticket:
        """Admit one request costing ``cost`` prompt tokens, or raise RateLimitError."""
        ...

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        """Charge ``tokens`` more and release the request's concurrency slots."""
        ...

    async def usage(self, scope: str) -> Usage: ...

    async def aclose(self) -> None: ...


def openai_duration(seconds: float) -> str:
    """Durations as OpenAI writes them in x-ratelimit-reset-*: 120ms, 19.5s, 1m0s."""
    if seconds < 1:
        return f"{round(seconds * 1000) if seconds > 0 else 0}ms"
    if seconds >= 60:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)}m{round(rest)}s"
    # Whole hundredths in integers: round(x, 2) and :g cost a float-to-text
    # conversion each, on every rated request.
    whole, hundredths = divmod(round(seconds * 100), 100)
    if not hundredths:
        return f"{whole}s"
    if hundredths % 10:
        return f"{whole}.{hundredths:02d}s"
    return f"{whole}.{hundredths // 10}s"


def ratelimit_headers(scope: Scope, usage: Usage) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers for one scope (empty when it has no rate limit)."""
    if not scope.rated:
        return {}
    headers: dict[str, str] = {}
    reset = openai_duration(usage.reset)
    if scope.rpm_text:
        left = scope.rpm - usage.requests
        headers["x-ratelimit-limit-requests"] = scope.rpm_text
        headers["x-ratelimit-remaining-requests"] = str(left) if left > 0 else "0"
        headers["x-ratelimit-reset-requests"] = reset
    if scope.tpm_text:
        left = scope.tpm - usage.tokens
        headers["x-ratelimit-limit-tokens"] = scope.tpm_text
        headers["x-ratelimit-remaining-tokens"] = str(left) if left > 0 else "0"
        headers["x-ratelimit-reset-tokens"] = reset
    return headers


def refusal_error(
    scope: Scope, refusal: Refusal, usage: Usage, cost: int, retry_after: float
) -> RateLimitError:
    quota = scope.quota
    headers = ratelimit_headers(scope, usage)
    if refusal == "too_large":
        message = (
            f"Request too large for {scope.label} on tokens per minute (TPM): "
            f"Limit {quota.tpm}, Requested {cost}. Send a shorter prompt."
        )
        return RateLimitError(message, headers=headers)
    wait = max(1, math.ceil(retry_after))
    headers["Retry-After"] = str(wait)
    if refusal == "concurrent":
        message = (
            f"Too many concurrent requests for {scope.label}: Limit {quota.max_concurrent}, "
            f"In flight {usage.in_flight}. Please try again when one finishes."
        )
    elif refusal == "requests":
        message = (
            f"Rate limit reached for {scope.label} on requests per minute (RPM): "
            f"Limit {quota.rpm}, Used {usage.requests}, Requested 1. "
            f"Please try again in {openai_duration(retry_after)}."
        )
    else:
        message = (
            f"Rate limit reached for {scope.label} on tokens per minute (TPM): "
            f"Limit {quota.tpm}, Used {usage.tokens}, Requested {cost}. "
            f"Please try again in {openai_duration(retry_after)}."
        )
    return RateLimitError(message, headers=headers)


class _Window:
    """One scope's last 60 seconds in one-second slots of [second, requests, tokens]."""

    __slots__ = ("in_flight", "requests", "slots", "tokens")

    def __init__(self) -> None:
        self.slots: deque[list[int]] = deque()
        self.requests = 0
        self.tokens = 0
        self.in_flight = 0

    def prune(self, second: int) -> None:
        cutoff = second - WINDOW_SECONDS + 1
        slots = self.slots
        while slots and slots[0][0] < cutoff:
            _, requests, tokens = slots.popleft()
            self.requests -= requests
            self.tokens -= tokens

    def add(self, second: int, requests: int, tokens: int) -> None:
        slots = self.slots
        if slots and slots[-1][0] == second:
            slots[-1][1] += requests
            slots[-1][2] += tokens
        else:
            slots.append([second, requests, tokens])
        self.requests += requests
        self.tokens += tokens

    def wait(self, column: int, amount: int, now: float) -> float:
        """Seconds until ``amount`` requests (column 1) or tokens (2) have left."""
        freed = 0
        for slot in self.slots:
            freed += slot[column]
            if freed >= amount:
                return slot[0] + WINDOW_SECONDS - now
        return float(WINDOW_SECONDS)

    def usage(self, now: float) -> Usage:
        reset = self.slots[0][0] + WINDOW_SECONDS - now if self.slots else 0.0
        return Usage(self.requests, self.tokens, self.in_flight, reset)

    def refusal(self, quota: Quota, cost: int, now: float) -> tuple[Refusal, float] | None:
        if quota.max_concurrent is not None and self.in_flight >= quota.max_concurrent:
            return "concurrent", 1.0
        if quota.rpm is not None and self.requests + 1 > quota.rpm:
            return "requests", self.wait(1, self.requests + 1 - quota.rpm, now)
        if quota.tpm is not None:
            if cost > quota.tpm:
                return "too_large", 0.0
            if self.tokens + cost > quota.tpm:
                return "tokens", self.wait(2, self.tokens + cost - quota.tpm, now)
        return None


class MemoryLimiter:
    """Limits for one replica: plain counters, no awaits, so check-and-take is atomic."""

    status = "memory"

    SWEEP_EVERY = 10_000  # admissions between sweeps of idle windows

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}
        self._until_sweep = self.SWEEP_EVERY

    def _window(self, name: str) -> _Window:
        window = self._windows.get(name)
        if window is None:
            window = self._windows[name] = _Window()
        return window

    def take(self, scopes: Sequence[Scope], cost: int, issuer: Limiter | None = None) -> Ticket:
        # The request path: written flat (no helper calls unless a window
        # slides or refuses), since every counted request comes through here.
        now = time.monotonic()
        second = int(now)
        cutoff = second - WINDOW_SECONDS + 1
        windows = self._windows
        taken = []
        for scope in scopes:
            window = windows.get(scope.name)
            if window is None:
                window = windows[scope.name] = _Window()
            if window.slots and window.slots[0][0] < cutoff:
                window.prune(second)
            if (
                window.in_flight >= scope.concurrent
                or window.requests >= scope.rpm
                or window.tokens + cost > scope.tpm
            ):
                refused = window.refusal(scope.quota, cost, now)
                if refused is not None:
                    raise refusal_error(scope, refused[0], window.usage(now), cost, refused[1])
            taken.append(window)
        usages = []
        for window in taken:
            slots = window.slots
            if slots and slots[-1][0] == second:
                slots[-1][1] += 1
                slots[-1][2] += cost
            else:
                slots.append([second, 1, cost])
            window.requests += 1
            window.tokens += cost
            window.in_flight += 1
            reset = slots[0][0] + WINDOW_SECONDS - now
            usages.append(Usage(window.requests, window.tokens, window.in_flight, reset))
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._sweep(second)
        return Ticket(tuple(scopes), "", cost, tuple(usages), issuer or self)

    def _sweep(self, second: int) -> None:
        """Forget idle windows, so callers that come and go (JWT subjects) cost no memory."""
        self._until_sweep = self.SWEEP_EVERY
        for name, window in list(self._windows.items()):
            window.prune(second)
            if not window.slots and not window.in_flight:
                del self._windows[name]

    def give_back(self, ticket: Ticket, tokens: int) -> None:
        second = int(time.monotonic())
        cutoff = second - WINDOW_SECONDS + 1
        windows = self._windows
        for scope in ticket.scopes:
            window = windows.get(scope.name)
            if window is None:  # swept while idle: nothing of it was in flight
                continue
            window.in_flight -= 1
            if tokens > 0:
                if window.slots and window.slots[0][0] < cutoff:
                    window.prune(second)
                window.add(second, 0, tokens)

    def peek(self, scope: str) -> Usage:
        now = time.monotonic()
        window = self._window(scope)
        window.prune(int(now))
        return window.usage(now)

    async def acquire(self, scopes: Sequence[Scope], cost: int) -> Ticket:
        return self.take(scopes, cost)

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        self.give_back(ticket, tokens)

    async def usage(self, scope: str) -> Usage:
        return self.peek(scope)

    async def aclose(self) -> None:
        return None
