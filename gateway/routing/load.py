"""What a local vLLM engine replica last reported about its own load on its
``/metrics``: requests running and waiting, KV cache usage. That report also
counts requests that reached the engine some other way (another gateway
worker, a client calling it directly); the balancers combine it with the
gateway's own in-flight count (``gateway.routing.balancing.load_of``).

``gateway.engines.load`` writes the reports, about once a second, each good
for a few rounds: a read that fails (the engine is slow to answer, or does
not answer at all) leaves the last report to age out, so one slow answer on
a busy host does not blank it, and an engine that stopped answering has none
a few seconds later. An engine that is not ready has none at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.fleet import EngineLoadConfig


@dataclass(slots=True, eq=False)
class BackendLoad:
    """An engine replica's own last report of its load."""

    running: float = 0.0
    waiting: float = 0.0
    kv_cache_usage: float = 0.0  # 0..1
    read_at: float | None = None  # monotonic; None: no report (never, or the engine is down)
    good_until: float = 0.0  # monotonic: the report counts until then

    def report(
        self, running: float, waiting: float, kv_cache_usage: float, now: float, good_for: float
    ) -> None:
        self.running, self.waiting, self.kv_cache_usage = running, waiting, kv_cache_usage
        self.read_at, self.good_until = now, now + good_for

    def lost(self) -> None:
        """The engine is down (not ready): its last report means nothing now."""
        self.read_at, self.good_until = None, 0.0

    def fresh(self, now: float) -> bool:
        return now <= self.good_until

    def full(self, limits: EngineLoadConfig, now: float) -> bool:
        """The engine reports a full queue or KV cache: a new request would wait."""
        return self.fresh(now) and (
            self.waiting >= limits.max_waiting or self.kv_cache_usage >= limits.max_kv_cache_usage
        )

    def snapshot(self, now: float) -> dict[str, float] | None:
        """What operators see (/ready); None without a fresh report."""
        if self.read_at is None or not self.fresh(now):
            return None
        return {
            "running": self.running,
            "waiting": self.waiting,
            "kv_cache_usage": round(self.kv_cache_usage, 4),
            "age_seconds": round(now - self.read_at, 2),
        }
