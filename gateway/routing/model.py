"""A public model as the router holds it (its targets, config, retry policy
and balancer), and one client request to it (``Call``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from adapters.base import Body
from gateway.config.schema import ModelConfig, RetryConfig
from gateway.routing.balancing import BALANCERS, Balancer
from gateway.routing.target import Target

Operation = Literal["chat", "completions", "embeddings"]


@dataclass(slots=True, eq=False)
class PublicModel:
    name: str
    targets: list[Target]
    config: ModelConfig
    retries: RetryConfig
    balancer: Balancer
    created: int = 0

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


@dataclass(slots=True)
class Call:
    """One client request as the router needs it."""

    operation: Operation
    body: Body
    session_key: str | None = None
    # Counted on demand (context-window checks), then kept for others (limits, usage).
    prompt_tokens: int | None = None
    fallbacks_taken: int = 0


def make_model(
    name: str,
    targets: list[Target],
    config: ModelConfig,
    retries: RetryConfig,
    created: int,
    rng: random.Random,
) -> PublicModel:
    balancer = BALANCERS[config.strategy](targets, rng)
    return PublicModel(name, targets, config, config.retries or retries, balancer, created)
