"""What a local vLLM engine replica last reported about its own load on its
``/metrics``: requests running and waiting, KV cache usage. That report also
counts requests that reached the engine some other way (another gateway
worker, a client calling it directly); the balancers combine it with the
gateway's own in-flight count (``gateway.routing.balancing.load_of``).

``gateway.engines.load`` writes the reports, about once a second; a report
older than ``STALE_AFTER`` (the reader stalled) counts as none.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.fleet import EngineLoadConfig

STALE_AFTER = 5.0


@dataclass(slots=True, eq=False)
class BackendLoad:
    """An engine replica's own last report of its load."""

    running: float = 0.0
    waiting: float = 0.0
    kv_cache_usage: float = 0.0  # 0..1
    read_at: float | None = None  # monotonic; None: no usable report (never, or the last failed)

    def report(self, running: float, waiting: float, kv_cache_usage: float, now: float) -> None:
        self.running, self.waiting, self.kv_cache_usage = running, waiting, kv_cache_usage
        self.read_at = now

    def lost(self) -> None:
        """The last read failed (timeout, refused, not Prometheus text)."""
        self.read_at = None

    def fresh(self, now: float) -> bool:
        return self.read_at is not None and now - self.read_at <= STALE_AFTER

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
