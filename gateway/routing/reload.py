"""The routing table of a running gateway, and how a config reload swaps it.

A reload (SIGHUP or ``POST /v1/gateway/reload``) builds a new ``Router`` from
the new models, targets and weights and replaces ``state.router`` in one
assignment, so each request sees either the old table or the new one, never
a mix. Requests already running keep the ``Target`` objects they hold; a
target that stays (same name) shares its ``TargetHealth`` with the new
router, so its breaker state and in-flight count carry over and admission
limits stay exact across the swap.

Providers the new config adds get adapters at the swap. The adapter of a
provider it removes (or changes) is closed only once no request that began
before the swap can still use it: after the longest retry deadline those
requests may spend (times their fallback chain), and when none of its
targets has a request in flight or queued. Local engines are processes the
gateway supervises, so a reload that would add, remove or change one is
refused with the reason; restarting applies it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from adapters.base import Adapter
from adapters.errors import ConfigError
from adapters.registry import build_adapter
from gateway.config.schema import GatewayConfig
from gateway.routing.build import provider_target_name
from gateway.routing.health import HealthChecker, TargetHealth
from gateway.routing.router import Router

IDLE_POLL_SECONDS = 0.2

BuildRouter = Callable[[GatewayConfig, Mapping[str, TargetHealth]], Router]
Rewrite = Callable[[GatewayConfig], GatewayConfig]


class LiveRouting:
    """Owns ``state.router``, its active health checks, and their swap on reload.

    ``build`` makes a Router from a config, reusing the given TargetHealth
    objects by target name; ``rewrite`` turns a freshly read config into what
    this process runs (e.g. the engines of ``serve --workers N`` reached as
    providers), when that differs from the file.
    """

    def __init__(
        self,
        config: GatewayConfig,
        adapters: dict[str, Adapter],
        build: BuildRouter,
        *,
        rewrite: Rewrite | None = None,
    ) -> None:
        self.config = config
        # The app's own dict: what it closes at shutdown is always the live set.
        self.adapters = adapters
        self._build = build
        self._rewrite = rewrite
        self.router = build(config, {})
        self._publish: Callable[[Router], None] | None = None
        self._checks: asyncio.Task[None] | None = None
        self._retiring: dict[asyncio.Task[None], Adapter] = {}

    def start(self, publish: Callable[[Router], None]) -> None:
        """Begin health checks; ``publish`` puts a new router where requests find it."""
        self._publish = publish
        self._start_checks()

    async def aclose(self) -> None:
        if self._checks is not None:
            self._checks.cancel()
        retiring = list(self._retiring.items())
        self._retiring.clear()
        for task, _ in retiring:
            task.cancel()
        await asyncio.gather(*(adapter.aclose() for _, adapter in retiring))

    # ---- reload --------------------------------------------------------------

    def prepare(self, new: GatewayConfig) -> Callable[[], None]:
        """Check that ``new`` can be swapped in (ConfigError if not) and return
        the function that swaps it; nothing changes until that is called."""
        if self._rewrite is not None:
            try:
                new = self._rewrite(new)
            except (KeyError, ConfigError) as exc:
                raise ConfigError([_engines_changed()]) from exc
        if new.engines != self.config.engines:
            raise ConfigError([_engines_changed()])
        old = self.config
        kept = {
            name
            for name in new.providers
            if name in old.providers and old.provider(name) == new.provider(name)
        }
        return lambda: self._swap(new, kept)

    def _swap(self, new: GatewayConfig, kept: set[str]) -> None:
        old_config, old_router = self.config, self.router
        retired = {name: self.adapters.pop(name) for name in set(self.adapters) - kept}
        for name in new.providers:
            if name not in kept:
                self.adapters[name] = build_adapter(new.provider(name))
        dropped = _target_names_of(old_config, set(retired))
        healths = {target.health.name: target.health for target in old_router.targets().values()}
        reused = {name: health for name, health in healths.items() if name not in dropped}
        self.router = self._build(new, reused)
        self.config = new
        if self._publish is not None:
            self._publish(self.router)
        self._start_checks()
        leaving = [healths[name] for name in dropped if name in healths]
        grace = _longest_attempt_window(old_config)
        for adapter in retired.values():
            task = asyncio.get_running_loop().create_task(self._retire(adapter, leaving, grace))
            self._retiring[task] = adapter
            task.add_done_callback(lambda done: self._retiring.pop(done, None))

    async def _retire(self, adapter: Adapter, leaving: list[TargetHealth], grace: float) -> None:
        await asyncio.sleep(grace)
        while any(health.in_flight or health.waiting for health in leaving):
            await asyncio.sleep(IDLE_POLL_SECONDS)
        await adapter.aclose()

    def _start_checks(self) -> None:
        if self._checks is not None:
            self._checks.cancel()
            self._checks = None
        interval = self.config.routing.health_check_interval
        if interval > 0:
            checker = HealthChecker(self.router.targets().values(), interval)
            self._checks = asyncio.get_running_loop().create_task(checker.run())

    def describe(self) -> dict[str, Any]:
        """What the reload endpoint reports about the routing table now in force."""
        return {
            "models": {
                name: {target.name: target.weight for target in model.targets}
                for name, model in self.router.models.items()
            }
        }


def _engines_changed() -> str:
    return (
        "engines: local engines were added, removed or changed; a reload cannot start or "
        "stop engine processes, so restart the gateway to apply that"
    )


def _target_names_of(config: GatewayConfig, providers: set[str]) -> set[str]:
    return {
        provider_target_name(spec)
        for model in config.models.values()
        for spec in model.targets
        if spec.provider in providers
    }


def _longest_attempt_window(config: GatewayConfig) -> float:
    """How long after a swap a request that began before it may start a new
    attempt: each model of its fallback chain gets its own retry deadline."""
    longest_chain = 1 + max((len(m.fallbacks) for m in config.models.values()), default=0)
    deadlines = [(m.retries or config.routing.retries).deadline for m in config.models.values()]
    return max(deadlines, default=config.routing.retries.deadline) * longest_chain
