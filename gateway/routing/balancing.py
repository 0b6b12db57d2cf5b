"""Load-balancing strategies: each orders a model's usable targets, best first.

The router tries targets in that order, so the order is also the failover
order. Strategies are chosen per model by ``strategy:`` in models.yaml.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.config.schema import Strategy
from gateway.routing.target import Target


class Balancer(Protocol):
    def order(self, targets: Sequence[Target], session_key: str | None) -> list[Target]: ...


class WeightedRandom:
    """Picks in proportion to weight; the rest follow in weighted-random order."""

    def __init__(self, targets: Sequence[Target], rng: random.Random) -> None:
        self._rng = rng

    def order(self, targets: Sequence[Target], session_key: str | None) -> list[Target]:
        pool = list(targets)
        ordered: list[Target] = []
        while len(pool) > 1:
            total = sum(t.weight for t in pool)
            point = self._rng.random() * total
            index = len(pool) - 1
            for i, target in enumerate(pool):
                point -= target.weight
                if point < 0:
                    index = i
                    break
            ordered.append(pool.pop(index))
        return ordered + pool


class RoundRobin:
    """Smooth weighted round-robin (each target gets its weight's share, interleaved)."""

    def __init__(self, targets: Sequence[Target], rng: random.Random) -> None:
        self._current: dict[str, float] = {t.name: 0.0 for t in targets}

    def order(self, targets: Sequence[Target], session_key: str | None) -> list[Target]:
        total = sum(t.weight for t in targets)
        for target in targets:
            self._current[target.name] = self._current.get(target.name, 0.0) + target.weight
        ordered = sorted(targets, key=lambda t: -self._current[t.name])
        self._current[ordered[0].name] -= total
        return ordered


class LeastBusy:
    """Fewest requests in flight per unit of weight first; ties broken at random."""

    def __init__(self, targets: Sequence[Target], rng: random.Random) -> None:
        self._rng = rng

    def order(self, targets: Sequence[Target], session_key: str | None) -> list[Target]:
        return sorted(
            targets,
            key=lambda t: (t.health.in_flight / (t.weight or 1e-9), self._rng.random()),
        )


class LowestLatency:
    """Lowest moving average of streams' time to first token (a target that
    served only non-streamed answers: of their latency). A target with no
    measure yet, or none for ``STALE_AFTER`` seconds, goes first: that is how
    it is learned, and how one measured slow once gets another chance."""

    STALE_AFTER = 10.0

    def __init__(self, targets: Sequence[Target], rng: random.Random) -> None:
        self._rng = rng

    def order(self, targets: Sequence[Target], session_key: str | None) -> list[Target]:
        now = time.monotonic()
        return sorted(targets, key=lambda t: (self._estimate(t, now), self._rng.random()))

    def _estimate(self, target: Target, now: float) -> float:
        health = target.health
        average: float | None
        if health.ewma_ttft is not None:
            average, sampled_at = health.ewma_ttft, health.ttft_sampled_at
        else:
            average, sampled_at = health.ewma_latency, health.latency_sampled_at
        if average is None or now - sampled_at > self.STALE_AFTER:
            return 0.0
        return average


class SessionAffinity:
    """The same session goes to the same target while it is usable, so the
    engine's prefix cache serves every turn. A consistent-hash ring (points in
    proportion to weight) means adding or losing a target moves few sessions."""

    POINTS_PER_WEIGHT = 64

    def __init__(self, targets: Sequence[Target], rng: random.Random) -> None:
        self._fallback = WeightedRandom(targets, rng)
        ring: list[tuple[int, str]] = []
        for target in targets:
            points = max(1, round(self.POINTS_PER_WEIGHT * target.weight))
            ring.extend((_hash(f"{target.name}#{i}"), target.name) for i in range(points))
        ring.sort()
        self._hashes = [h for h, _ in ring]
        self._names = [name for _, name in ring]

    def order(self, targets: Sequence[Target], session_key: str | None) -> list[Target]:
        if session_key is None or not self._hashes:
            return self._fallback.order(targets, None)
        by_name = {t.name: t for t in targets}
        start = bisect.bisect(self._hashes, _hash(session_key))
        ordered: list[Target] = []
        for step in range(len(self._names)):
            target = by_name.pop(self._names[(start + step) % len(self._names)], None)
            if target is not None:
                ordered.append(target)
                if not by_name:
                    break
        return ordered + list(by_name.values())


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


BALANCERS: dict[Strategy, Callable[[Sequence[Target], random.Random], Balancer]] = {
    "weighted": WeightedRandom,
    "round-robin": RoundRobin,
    "least-busy": LeastBusy,
    "latency": LowestLatency,
    "session": SessionAffinity,
}
