"""Everything the gateway reports about its requests, in one object built in
the app lifespan: Prometheus metrics (always), the audit log and tracing
(when configured). The middleware calls ``start`` and ``finish`` once per
request; what is off costs a None check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.config.schema import GatewayConfig
from gateway.observability.audit import AuditLog
from gateway.observability.logs import AccessRecord
from gateway.observability.metrics import Metrics
from gateway.routing.router import Router
from gateway.routing.target import Target


class Telemetry:
    def __init__(self, config: GatewayConfig, log: Any) -> None:
        self.metrics = Metrics(config.models)
        self.audit = AuditLog(config.audit, log) if config.audit is not None else None
        self.tracing: Any = None
        if config.tracing is not None:
            try:
                from gateway.observability.tracing import Tracing
            except ImportError:
                log.warning(
                    "tracing is configured but OpenTelemetry is not installed; "
                    "install vllm-gateway[otel] to send spans"
                )
            else:
                self.tracing = Tracing(config.tracing)

    def attach(self, router: Router, engines: Any) -> None:
        """Watch the router's targets and the local engines; trace upstream calls."""
        self.metrics.watch(router.models, router.targets().values(), engines)
        if self.tracing is not None:
            self.tracing.wrap_adapters(_all_targets(router))

    def start(self, record: AccessRecord, headers: Mapping[str, str]) -> Any:
        """At a request's start: its span when tracing, else None."""
        return None if self.tracing is None else self.tracing.start(record, headers)

    def finish(self, record: AccessRecord, span: Any) -> None:
        """At a request's end, with what ``start`` returned."""
        self.metrics.observe(record, time.perf_counter())
        if self.audit is not None:
            self.audit.write(record)
        if span is not None:
            self.tracing.finish(record, span)

    def start_background(self) -> None:
        self.metrics.start()
        if self.audit is not None:
            self.audit.start()

    async def aclose(self) -> None:
        await self.metrics.aclose()
        if self.audit is not None:
            await asyncio.to_thread(self.audit.close)
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)


def _all_targets(router: Router) -> Iterable[Target]:
    # Every model has Target objects of its own, even for a shared backend.
    return (target for model in router.models.values() for target in model.targets)
