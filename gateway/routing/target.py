"""A target: one backend of a public model (a provider's model, or a local
engine), as the router and the balancers see it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Adapter, Body
from adapters.config import Timeouts
from gateway.routing.health import TargetHealth
from gateway.routing.load import BackendLoad


@dataclass(slots=True, eq=False)
class Target:
    """One backend of a public model, as the router sees it."""

    name: str  # shown to operators: X-Gateway-Target, access log, metrics
    adapter: Adapter
    upstream_model: str
    health: TargetHealth
    weight: float = 1.0
    tier: int = 1
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Sampling defaults of an engine's family preset, applied when the client sets none.
    defaults: dict[str, Any] = field(default_factory=dict)
    # False while the target is known to be down (e.g. its engine is restarting).
    available: Callable[[], bool] = field(default=lambda: True)
    context_window: int | None = None
    # A local engine replica's own report of its load (None: not an engine).
    load: BackendLoad | None = None

    def prepare(self, body: Body) -> Body:
        """The body to send: the client's own object with the upstream model name."""
        prepared = {**self.defaults, **body} if self.defaults else dict(body)
        prepared["model"] = self.upstream_model
        return prepared
