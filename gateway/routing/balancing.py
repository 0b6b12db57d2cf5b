"""Load-balancing strategies: each orders a model's usable targets, best first.

The router tries targets in that order, so the order is also the failover
order, and tells the strategy which target each attempt went to (``sent``).
Strategies are chosen per model by ``strategy:`` in models.yaml.

A target's load (``load_of``) is the gateway's own requests in flight to it
or, for a local engine replica, what the engine itself last reported
running and waiting, whichever is more.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.config.fleet import PrefixConfig
from gateway.config.schema import Strategy
from gateway.routing.call import Call
from gateway.routing.prefix import PrefixIndex, TargetSlots, prompt_blocks
from gateway.routing.target import Target


@dataclass(frozen=True, slots=True)
class Balancing:
    """What a strategy is built with, besides the model's targets."""

    rng: random.Random
    prefix: PrefixConfig = field(default_factory=PrefixConfig)


class Balancer:
    """A strategy: ``order`` the usable targets of one tier for a request."""

    def __init__(self, targets: Sequence[Target], settings: Balancing) -> None:
        self._rng = settings.rng

    def order(self, targets: Sequence[Target], call: Call) -> list[Target]:
        raise NotImplementedError

    def sent(self, target: Target, call: Call) -> None:
        """An attempt of ``call`` went to ``target`` (most strategies keep no record)."""


def load_of(target: Target, now: float) -> float:
    """Requests the target is serving or holding: the engine's own count when it
    reported one lately, never fewer than the gateway has in flight to it."""
    ours = float(target.health.in_flight)
    load = target.load
    if load is None or not load.fresh(now):
        return ours
    return max(ours, load.running + load.waiting)


class WeightedRandom(Balancer):
    """Picks in proportion to weight; the rest follow in weighted-random order."""

    def order(self, targets: Sequence[Target], call: Call) -> list[Target]:
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


class RoundRobin(Balancer):
    """Smooth weighted round-robin (each target gets its weight's share, interleaved)."""

    def __init__(self, targets: Sequence[Target], settings: Balancing) -> None:
        super().__init__(targets, settings)
        self._current: dict[str, float] = {t.name: 0.0 for t in targets}

    def order(self, targets: Sequence[Target], call: Call) -> list[Target]:
        total = sum(t.weight for t in targets)
        for target in targets:
            self._current[target.name] = self._current.get(target.name, 0.0) + target.weight
        ordered = sorted(targets, key=lambda t: -self._current[t.name])
        self._current[ordered[0].name] -= total
        return ordered


class LeastBusy(Balancer):
    """Least load (``load_of``) per unit of weight first; ties broken at random."""

    def order(self, targets: Sequence[Target], call: Call) -> list[Target]:
        now = time.monotonic()
        rng = self._rng
        return sorted(targets, key=lambda t: (load_of(t, now) / (t.weight or 1e-9), rng.random()))


class LowestLatency(Balancer):
    """Lowest moving average of streams' time to first token (a target that
    served only non-streamed answers: of their latency). A target with no
    measure yet, or none for ``STALE_AFTER`` seconds, goes first: that is how
    it is learned, and how one measured slow once gets another chance."""

    STALE_AFTER = 10.0

    def order(self, targets: Sequence[Target], call: Call) -> list[Target]:
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


class SessionAffinity(Balancer):
    """The same session goes to the same target while it is usable, so the
    engine's prefix cache serves every turn. A consistent-hash ring (points in
    proportion to weight) means adding or losing a target moves few sessions."""

    POINTS_PER_WEIGHT = 64

    def __init__(self, targets: Sequence[Target], settings: Balancing) -> None:
        super().__init__(targets, settings)
        self._fallback = WeightedRandom(targets, settings)
        ring: list[tuple[int, str]] = []
        for target in targets:
            points = max(1, round(self.POINTS_PER_WEIGHT * target.weight))
            ring.extend((_hash(f"{target.name}#{i}"), target.name) for i in range(points))
        ring.sort()
        self._hashes = [h for h, _ in ring]
        self._names = [name for _, name in ring]

    def order(self, targets: Sequence[Target], call: Call) -> list[Target]:
        session_key = call.session_key
        if session_key is None or not self._hashes:
            return self._fallback.order(targets, call)
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


class PrefixAffinity(Balancer):
    """The target recently sent the longest prefix of the prompt goes first
    (its engine likely holds that prefix in its KV cache, so it skips
    prefilling it), the least loaded among equal matches; unless its load
    exceeds the least loaded target's by more than ``load_margin``, when the
    least loaded goes first. Without a match: least busy first. A target
    whose engine stopped is forgotten (``gateway.routing.prefix``)."""

    def __init__(self, targets: Sequence[Target], settings: Balancing) -> None:
        super().__init__(targets, settings)
        self._config = settings.prefix
        self._targets = list(targets)
        self._index = PrefixIndex(settings.prefix.max_blocks)
        self._slots = TargetSlots(self._index)
        self._by_load = LeastBusy(targets, settings)

    def order(self, targets: Sequence[Target], call: Call) -> list[Target]:
        self._forget_departed()
        by_load = self._by_load.order(targets, call)
        slots = self._slots
        candidates = 0
        for target in targets:
            candidates |= slots.bit_of(target.name)
        if not candidates:
            return by_load
        hashes = prompt_blocks(call, self._config.block_bytes)
        depth, matched = self._index.match(hashes, candidates)
        if not depth:
            return by_load
        best = next(t for t in by_load if slots.bit_of(t.name) & matched)
        now = time.monotonic()
        if best is by_load[0] or (
            load_of(best, now) - load_of(by_load[0], now) > self._config.load_margin
        ):
            return by_load
        return [best, *(t for t in by_load if t is not best)]

    def sent(self, target: Target, call: Call) -> None:
        hashes = prompt_blocks(call, self._config.block_bytes)
        self._index.record(hashes, self._slots.bit(target.name))

    def _forget_departed(self) -> None:
        for target in self._targets:
            if not target.available() and self._slots.bit_of(target.name):
                self._slots.leave(target.name)


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


BALANCERS: dict[Strategy, Callable[[Sequence[Target], Balancing], Balancer]] = {
    "weighted": WeightedRandom,
    "round-robin": RoundRobin,
    "least-busy": LeastBusy,
    "latency": LowestLatency,
    "session": SessionAffinity,
    "prefix": PrefixAffinity,
}
