"""A public model as the router holds it (its targets, config, retry policy,
balancer and engine load limits), and one client request to it (``Call``,
from ``gateway.routing.call``, which the balancers see too)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from gateway.config.fleet import EngineLoadConfig, merged_prefix
from gateway.config.schema import ModelConfig, RetryConfig, RoutingConfig
from gateway.routing.balancing import BALANCERS, Balancer, Balancing
from gateway.routing.call import Call, Operation
from gateway.routing.target import Target

__all__ = ["Call", "Operation", "PublicModel", "make_model"]


@dataclass(slots=True, eq=False)
class PublicModel:
    name: str
    targets: list[Target]
    config: ModelConfig
    retries: RetryConfig
    balancer: Balancer
    created: int = 0
    # When an engine replica counts as full (its own report of waiting requests, KV cache).
    load_limits: EngineLoadConfig = field(default_factory=EngineLoadConfig)

    @property
    def stream_failover(self) -> bool:
        """On unless the model says otherwise, where a second target exists."""
        if self.config.stream_failover is not None:
            return self.config.stream_failover
        return len(self.targets) > 1

    @property
    def context_window(self) -> int | None:
        if self.config.max_model_len is not None:
            return self.config.max_model_len
        windows = [t.context_window for t in self.targets if t.context_window]
        return min(windows) if windows else None


def make_model(
    name: str,
    targets: list[Target],
    config: ModelConfig,
    retries: RetryConfig,
    created: int,
    rng: random.Random,
    routing: RoutingConfig | None = None,
) -> PublicModel:
    """``retries`` and ``routing``: the defaults of ``routing:`` (prefix knobs, engine load)."""
    routing = routing or RoutingConfig()
    settings = Balancing(rng, merged_prefix(routing.prefix, config.prefix))
    balancer = BALANCERS[config.strategy](targets, settings)
    return PublicModel(
        name,
        targets,
        config,
        config.retries or retries,
        balancer,
        created,
        load_limits=routing.engine_load,
    )
