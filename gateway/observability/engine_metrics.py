"""Local engines in ``GET /metrics``: each engine's state and restarts, and
the engines' own ``vllm:*`` series (running and waiting requests, KV-cache
usage, prefix-cache hits, token counters, ...) scraped from each ready
engine when the gateway is scraped, re-exported with an ``engine`` label.

vLLM labels its series with ``engine`` too (its engine-core index); that
label is kept as ``engine_index``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from adapters.config import Timeouts
from adapters.errors import GatewayError
from adapters.transport.registry import open_transport
from adapters.transport.settings import TransportSettings
from gateway.engines.handle import EngineState, EngineStatus

VLLM_PREFIX = "vllm:"


class Families:
    """Already-built metric families, in the shape ``generate_latest`` reads."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


class EngineSource(Protocol):
    """Where the engines come from (``gateway.engines.runtime.LocalEngines``)."""

    @property
    def handles(self) -> Mapping[str, EngineStatus]: ...


class _NoEngines:
    handles: Mapping[str, EngineStatus] = MappingProxyType({})


class EngineCollector:
    """Engine state and restarts, read from the engines at scrape time."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self.source: EngineSource = _NoEngines()

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            self._prefix + "engine_state",
            "1 for the local engine's current state (starting, ready, restarting, failed, stopped)",
            labels=["engine", "state"],
        )
        restarts = CounterMetricFamily(
            self._prefix + "engine_restarts",
            "Times the gateway restarted a local engine after a crash or hang",
            labels=["engine"],
        )
        for name, handle in self.source.handles.items():
            for value in EngineState:
                state.add_metric([name, value.value], 1.0 if handle.state is value else 0.0)
            restarts.add_metric([name], handle.restarts)
        yield state
        yield restarts


class EngineScraper:
    """Reads every ready engine's ``/metrics`` at once, each with a short timeout."""

    def __init__(self, prefix: str, timeout: float) -> None:
        self._prefix = prefix
        self._timeouts = Timeouts(connect=timeout, first_token=timeout, idle=timeout, total=timeout)
        self._transport = open_transport(TransportSettings(what="engine", trust_env=False))
        self.source: EngineSource = _NoEngines()

    async def scrape(self) -> list[Metric]:
        handles = list(self.source.handles.values())
        if not handles:
            return []
        texts = await asyncio.gather(*(self._fetch(h) for h in handles))
        fetched = {h.name: text for h, text in zip(handles, texts, strict=True) if text}
        # Parsing a few hundred lines per engine is kept off the event loop.
        families, parsed = await asyncio.to_thread(relabel, fetched) if fetched else ([], set())
        up = GaugeMetricFamily(
            self._prefix + "engine_metrics_up",
            "1 when the engine's own /metrics answered this scrape",
            labels=["engine"],
        )
        for handle in handles:
            up.add_metric([handle.name], 1.0 if handle.name in parsed else 0.0)
        return [up, *families]

    async def _fetch(self, handle: EngineStatus) -> str | None:
        if not handle.is_ready():
            return None
        url = f"http://127.0.0.1:{handle.port}/metrics"
        try:
            response = await self._transport.request("GET", url, None, self._timeouts)
        except GatewayError:
            return None
        return response.body.decode("utf-8", "replace") if response.status == 200 else None

    async def aclose(self) -> None:
        await self._transport.aclose()


def relabel(texts: Mapping[str, str]) -> tuple[list[Metric], set[str]]:
    """The ``vllm:*`` families of every engine's text merged into one family
    per name, each sample labelled with its engine; and which texts parsed."""
    merged: dict[str, Metric] = {}
    parsed: set[str] = set()
    for engine, text in texts.items():
        try:
            families = [f for f in text_string_to_metric_families(text) if _wanted(f)]
        except ValueError:
            continue  # not Prometheus text: reported as not up
        parsed.add(engine)
        for family in families:
            into = merged.get(family.name)
            if into is None:
                into = merged[family.name] = Metric(family.name, family.documentation, family.type)
            for sample in family.samples:
                into.add_sample(sample.name, _labels(engine, sample.labels), sample.value)
    return list(merged.values()), parsed


def _wanted(family: Any) -> bool:
    return str(family.name).startswith(VLLM_PREFIX)


def _labels(engine: str, labels: dict[str, str]) -> dict[str, str]:
    relabelled = {"engine": engine}
    for key, value in labels.items():
        relabelled["engine_index" if key == "engine" else key] = value
    return relabelled
