"""The local engines of one gateway run: manager, adapters, router targets
(one per engine replica), the replicas' own load reports and the startup
summary, built in the app's lifespan and closed with it."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from adapters.config import Timeouts
from gateway.config.schema import GatewayConfig, ModelConfig, TargetConfig
from gateway.engines.adapter import EngineAdapter
from gateway.engines.handle import EngineStatus, replica_names
from gateway.engines.load import LoadMonitor
from gateway.engines.logfile import secret_values, tail
from gateway.engines.presets import default_sampling, engine_env
from gateway.engines.progress import show_progress
from gateway.engines.shared import SharedEngineState
from gateway.engines.supervisor import EngineManager
from gateway.routing.health import TargetHealth
from gateway.routing.load import BackendLoad
from gateway.routing.target import Target

TABLE_HEADERS = ("MODEL", "ENGINE", "FAMILY", "STATE", "URL")
TARGET_PREFIX = "engine/"


class LocalEngines:
    """The engines of this gateway: supervised here, or (``serve --workers N``)
    by the parent process, whose published state ``shared`` reads."""

    def __init__(
        self,
        config: GatewayConfig,
        log: Any,
        summary: IO[str] | None = None,
        shared: Path | None = None,
    ) -> None:
        self.config = config
        self.log = log
        self.summary = summary if summary is not None else sys.stderr
        self.manager = EngineManager(config.engines, log=log) if config.engines else None
        self.shared = SharedEngineState(shared) if shared is not None else None
        handles = self.manager.handles if self.manager else {}
        # By replica name; an engine's replicas in order.
        self.adapters = {name: EngineAdapter(handle) for name, handle in handles.items()}
        self.replicas = {
            engine: [self.adapters[name] for name in replica_names(engine, engine_config)]
            for engine, engine_config in config.engines.items()
        }
        self.monitor = LoadMonitor(lambda: self.handles, config.routing.engine_load)
        self._report: asyncio.Task[None] | None = None
        self._monitoring: asyncio.Task[None] | None = None

    def targets(
        self,
        spec: TargetConfig,
        model: ModelConfig,
        health_of: Callable[[str], TargetHealth],
        merge: Callable[..., Timeouts],
    ) -> list[Target]:
        """The router's view of an ``{engine: name}`` target: one target per replica."""
        assert spec.engine is not None
        return [
            self._replica_target(adapter, spec, model, health_of, merge)
            for adapter in self.replicas[spec.engine]
        ]

    def _replica_target(
        self,
        adapter: EngineAdapter,
        spec: TargetConfig,
        model: ModelConfig,
        health_of: Callable[[str], TargetHealth],
        merge: Callable[..., Timeouts],
    ) -> Target:
        handle = adapter.handle
        engine = handle.config
        name = TARGET_PREFIX + handle.name
        health = health_of(name)

        def forget_failed_checks() -> None:
            # Active health checks failed while the engine loaded; it is up now,
            # so route to it at once rather than after the next check.
            health.checked_healthy = None

        handle.on_ready[health.name] = forget_failed_checks
        return Target(
            name=name,
            adapter=adapter,
            upstream_model=handle.served_name,
            health=health,
            weight=spec.weight,
            tier=spec.tier,
            timeouts=merge(engine.timeouts, model.timeouts, spec.timeouts),
            defaults=default_sampling(engine),
            available=handle.is_ready,
            context_window=engine.max_model_len,
            load=self.monitor.load(handle.name),
        )

    def load_for(self, target_name: str) -> BackendLoad | None:
        """The load report of a replica that another process supervises
        (``serve --workers N``: its target is a provider named ``engine/<replica>``)."""
        if self.shared is None or not target_name.startswith(TARGET_PREFIX):
            return None
        name = target_name[len(TARGET_PREFIX) :]
        return self.monitor.load(name) if name in self.shared.handles else None

    def availability_for(self, target_name: str, health: TargetHealth) -> Callable[[], bool] | None:
        """Whether a replica another process supervises is ready (``serve
        --workers N``), if ``target_name`` is one. When it turns ready, health
        checks failed while it loaded are forgotten, as for a local engine:
        each worker routes to it at once, not after its own next check."""
        if self.shared is None or not target_name.startswith(TARGET_PREFIX):
            return None
        name, shared = target_name[len(TARGET_PREFIX) :], self.shared
        if name not in shared.handles:
            return None
        was_ready = False

        def available() -> bool:
            nonlocal was_ready
            record = shared.handles.get(name)  # a stat; the file is read when it changed
            ready = record is not None and record.is_ready()
            if ready and not was_ready:
                health.checked_healthy = None
            was_ready = ready
            return ready

        return available

    def start(self) -> None:
        if self.handles:
            self._monitoring = asyncio.create_task(self.monitor.run())
        if self.manager is None:
            return
        self.manager.start()
        self._report = asyncio.create_task(self._report_when_settled())

    async def aclose(self) -> None:
        for task in (self._report, self._monitoring):
            if task is not None:
                task.cancel()
        await self.monitor.aclose()
        if self.manager is not None:
            await self.manager.stop()
        await asyncio.gather(*(adapter.aclose() for adapter in self.adapters.values()))

    @property
    def handles(self) -> Mapping[str, EngineStatus]:
        if self.manager is not None:
            return self.manager.handles
        if self.shared is not None:
            return self.shared.handles
        return {}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every replica as /ready shows it, with its last load report."""
        now = time.monotonic()
        return {
            name: {**handle.snapshot(), "load": self.monitor.load(name).snapshot(now)}
            for name, handle in self.handles.items()
        }

    def log_tail(self, name: str, lines: int) -> list[str] | None:
        """The last ``lines`` lines of an engine's log for operators, with every
        value it was given as a secret masked; None when no engine has that name.
        Reads the file: call it off the event loop."""
        handle = self.manager.handles.get(name) if self.manager else None
        if handle is None:
            return None
        secrets = secret_values(handle.config.extra_args, engine_env(handle.config))
        return tail(handle.log_path, lines, max_bytes=max(64 * 1024, lines * 1024), secrets=secrets)

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """One row per model target served by a local engine replica."""
        rows: list[tuple[str, str, str, str, str]] = []
        for model_name, model in self.config.models.items():
            for spec in model.targets:
                for adapter in self.replicas[spec.engine] if spec.engine else ():
                    handle = adapter.handle
                    family: str = handle.config.family or "-"
                    state = handle.state.value
                    rows.append((model_name, handle.name, family, state, handle.base_url))
        return rows

    async def _report_when_settled(self) -> None:
        assert self.manager is not None
        if self.summary.isatty():
            # A person is watching: a live table; log files get the log lines.
            await show_progress(list(self.manager.handles.values()), self.summary)
        await self.manager.wait_settled()
        print(render_table(TABLE_HEADERS, self.rows()), file=self.summary, flush=True)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(cell) for cell in column) for column in zip(*table, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )
