"""The router of a config: each public model's targets (provider models and
local engines, one target per engine replica) with their merged timeouts and
shared health, built at startup and again on every reload."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

from adapters.base import Adapter
from adapters.config import Timeouts
from gateway.config.schema import GatewayConfig, ModelConfig, TargetConfig
from gateway.routing.health import TargetHealth
from gateway.routing.load import BackendLoad
from gateway.routing.model import PublicModel, make_model
from gateway.routing.router import Observer, Router
from gateway.routing.target import Target
from gateway.tokens import TokenCounter


class EngineTargets(Protocol):
    """Where ``{engine: name}`` targets come from (``gateway.engines.runtime``)."""

    def targets(
        self,
        spec: TargetConfig,
        model: ModelConfig,
        health_of: Callable[[str], TargetHealth],
        merge: Callable[..., Timeouts],
    ) -> list[Target]:
        """One target per replica of the engine; ``health_of(name)`` gives each its health."""
        ...

    def load_for(self, target_name: str) -> BackendLoad | None:
        """The load report of an engine replica reached as a provider target
        (``serve --workers N``), if ``target_name`` is one."""
        ...

    def availability_for(self, target_name: str, health: TargetHealth) -> Callable[[], bool] | None:
        """Whether such a replica is ready now, if ``target_name`` is one."""
        ...


def provider_target_name(spec: TargetConfig) -> str:
    """The name of a provider target: its health, X-Gateway-Target header and metric label."""
    return spec.name or f"{spec.provider}/{spec.model}"


def merged_timeouts(*layers: Timeouts | None) -> Timeouts:
    """Later layers override earlier ones, key by key (only keys a layer sets).
    With no override the base object itself is returned, so adapters can keep
    their prebuilt client timeouts for it."""
    base, *overrides = layers
    if not any(o is not None and o.model_fields_set for o in overrides):
        return base or Timeouts()
    values: dict[str, Any] = {}
    for layer in layers:
        if layer is not None:
            values.update({k: getattr(layer, k) for k in layer.model_fields_set})
    return Timeouts(**values)


def build_router(
    config: GatewayConfig,
    adapters: Mapping[str, Adapter],
    created: int,
    tokens: TokenCounter,
    engines: EngineTargets | None = None,
    observer: Observer | None = None,
    previous: Mapping[str, TargetHealth] | None = None,
) -> Router:
    """The router of ``config``. A target named in ``previous`` (a reload) keeps
    that TargetHealth, its breaker state and in-flight count, with the new
    config's settings."""
    routing = config.routing
    health: dict[str, TargetHealth] = {}
    kept = previous or {}
    rng = random.Random()

    def health_of(name: str, spec: TargetConfig) -> TargetHealth:
        if name in health:
            return health[name]
        found = kept.get(name)
        if found is None:
            found = TargetHealth(
                name,
                routing.breaker,
                spec.max_concurrency,
                routing.max_queue,
                routing.queue_timeout,
            )
        else:
            found.breaker, found.max_concurrency = routing.breaker, spec.max_concurrency
            found.max_queue, found.queue_timeout = routing.max_queue, routing.queue_timeout
        health[name] = found
        return found

    models: dict[str, PublicModel] = {}
    for name, model in config.models.items():
        targets = []
        for spec in model.targets:
            if spec.engine is not None and engines is not None:
                health_of_replica = partial(health_of, spec=spec)
                targets.extend(engines.targets(spec, model, health_of_replica, merged_timeouts))
                continue
            assert spec.provider is not None and spec.model is not None
            provider = config.providers[spec.provider]
            target_name = provider_target_name(spec)
            target_health = health_of(target_name, spec)
            target = Target(
                name=target_name,
                adapter=adapters[spec.provider],
                upstream_model=spec.model,
                health=target_health,
                weight=spec.weight,
                tier=spec.tier,
                timeouts=merged_timeouts(provider.timeouts, model.timeouts, spec.timeouts),
                defaults=spec.sampling,
                load=engines.load_for(target_name) if engines is not None else None,
            )
            if engines is not None:
                available = engines.availability_for(target_name, target_health)
                target.available = available if available is not None else target.available
            targets.append(target)
        models[name] = make_model(name, targets, model, routing.retries, created, rng, routing)
    return Router(models, count_prompt=tokens.count_request, observer=observer, rng=rng)
