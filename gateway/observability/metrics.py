"""Prometheus metrics: what ``GET /metrics`` shows.

Request metrics come from each request's ``AccessRecord`` once it is done
(one call from the middleware); label children are bound once per label set
and cached, so a request costs a few dict lookups and increments. Target
load and breaker state are read from each ``TargetHealth`` when scraped,
never counted on the request path; engine state and the engines' own
``vllm:*`` series are read at scrape time too (``gateway.observability.engine_metrics``).

Several worker processes (``serve --workers N``) share one directory of
prometheus-client's multiprocess files: ``prepare_multiprocess`` sets it up
before the workers start, and any worker's scrape shows the totals. Per-worker
target gauges are then also refreshed every second, so a scrape answered by
one worker sees the others' load (summed) and the worst breaker state.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from adapters.errors import GatewayError
from gateway.observability.engine_metrics import (
    EngineCollector,
    EngineScraper,
    EngineSource,
    Families,
)
from gateway.observability.logs import AccessRecord, Finding
from gateway.routing.router import Observer
from gateway.routing.target import Target

PREFIX = "vllm_gateway_"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# The OpenAI inference endpoints: what the request metrics count (probes and
# admin calls would only blur traffic and latency). ``POST /v1/responses`` and
# each turn of its WebSocket mode count; the socket's upgrade (a GET) does not.
INFERENCE_PATHS = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"}
)
# Model names come from clients: only configured ones become label values.
OTHER_MODEL = "other"
BREAKER_VALUES = {"closed": 0.0, "half-open": 1.0, "open": 2.0}

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 20, 60)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2.5)


def prepare_multiprocess(path: Path | None = None) -> Path:
    """Set up multiprocess metrics for workers forked after this call: an
    empty directory (stale counts from a previous run would add up) named in
    the environment, and prometheus-client's value class switched to the
    file-backed one. Returns the directory."""
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="vllm-gateway-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    # prometheus-client chooses its value class from the environment when it
    # is imported, which here happened before the server knew of workers.
    values.ValueClass = values.get_value_class()
    return path


def multiprocess_dir() -> Path | None:
    """The shared directory, when this process writes multiprocess metrics."""
    path = os.environ.get(MULTIPROC_ENV)
    multiprocess = getattr(values.ValueClass, "_multiprocess", False)
    return Path(path) if path and multiprocess else None


class _ModelSeries:
    """The children of one public model's per-model metrics, bound once."""

    __slots__ = ("completion", "duration", "itl", "prompt", "ttft")

    def __init__(self, metrics: Metrics, model: str) -> None:
        self.duration = metrics.duration.labels(model)
        self.ttft = metrics.ttft.labels(model)
        self.itl = metrics.inter_token.labels(model)
        self.prompt = metrics.tokens.labels(model, "prompt")
        self.completion = metrics.tokens.labels(model, "completion")


class RouterMetrics(Observer):
    """The router's decisions, counted."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def retry(self, model: str, target: str, error: GatewayError) -> None:
        self._metrics.retries.labels(self._metrics.model_label(model), target, error.type).inc()

    def fallback(self, model: str, to_model: str, reason: str) -> None:
        label = self._metrics.model_label
        self._metrics.fallbacks.labels(label(model), label(to_model), reason).inc()

    def failover(self, model: str, from_target: str, to_target: str) -> None:
        label = self._metrics.model_label(model)
        self._metrics.failovers.labels(label, from_target, to_target).inc()


class Metrics:
    """Every gateway metric; built in the app lifespan, one per process."""

    def __init__(self, models: Collection[str], *, scrape_timeout: float = 1.0) -> None:
        self._models = frozenset(models)
        self._multiprocess = multiprocess_dir()
        # Multiprocess values live in the shared files, read back by the collector below.
        own = None if self._multiprocess else CollectorRegistry()
        self._build(own)
        self.registry = own if own is not None else CollectorRegistry()
        if self._multiprocess is not None:
            MultiProcessCollector(self.registry, str(self._multiprocess))
        self.engines = EngineCollector(PREFIX)
        self.registry.register(self.engines)
        self.scraper = EngineScraper(PREFIX, scrape_timeout)
        self.router_observer = RouterMetrics(self)
        self._targets: list[Target] = []
        self._requests: dict[tuple[str, str, int, str], Any] = {}
        self._errors: dict[tuple[str, str, str], Any] = {}
        self._by_model: dict[str, _ModelSeries] = {}
        self._findings: dict[tuple[str, str], Any] = {}
        self._sampler: asyncio.Task[None] | None = None

    def _build(self, registry: CollectorRegistry | None) -> None:
        def counter(name: str, doc: str, labels: Iterable[str]) -> Counter:
            return Counter(PREFIX + name, doc, list(labels), registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(PREFIX + name, doc, ["model"], registry=registry, buckets=buckets)

        def gauge(name: str, doc: str, mode: Any) -> Gauge:
            return Gauge(PREFIX + name, doc, ["target"], registry=registry, multiprocess_mode=mode)

        self.requests = counter(
            "requests",
            "Inference requests by public model, target, HTTP status and endpoint",
            ("model", "target", "status", "endpoint"),
        )
        self.errors = counter(
            "errors",
            "Failed inference requests by OpenAI error type",
            ("model", "target", "error_type"),
        )
        self.tokens = counter(
            "tokens", "Tokens by public model; type is prompt or completion", ("model", "type")
        )
        self.rate_limited = counter(
            "rate_limit_rejections",
            "Requests refused with 429 (rate or concurrency limit)",
            ("key",),
        )
        self.retries = counter(
            "retries",
            "Retried attempts: the target that failed and why",
            ("model", "target", "error_type"),
        )
        self.fallbacks = counter(
            "fallbacks", "Requests passed on to a fallback model", ("model", "to_model", "reason")
        )
        self.guardrail_findings = counter(
            "guardrail_findings",
            "What guardrails found: the guardrail and what it did (mask, block)",
            ("guardrail", "action"),
        )
        self.cache_requests = counter(
            "cache_requests",
            "Response cache lookups by public model; result is hit, miss or bypass",
            ("model", "result"),
        )
        self.cache_semantic_hits = counter(
            "cache_semantic_hits", "Cache hits found by embedding similarity", ("model",)
        )
        self.cache_tokens_saved = counter(
            "cache_tokens_saved", "Tokens (prompt + completion) answered from the cache", ("model",)
        )
        self.failovers = counter(
            "stream_failovers",
            "Streams that broke mid-way and were continued on another target",
            ("model", "from", "to"),
        )
        self.duration = histogram(
            "request_duration_seconds", "Request latency, to the last byte", LATENCY_BUCKETS
        )
        self.ttft = histogram(
            "time_to_first_token_seconds", "Streams: time to the first chunk", TTFT_BUCKETS
        )
        self.inter_token = histogram(
            "inter_token_latency_seconds", "Streams: mean gap between chunks", ITL_BUCKETS
        )
        self.in_flight = gauge("target_in_flight", "Requests being served by a target", "livesum")
        self.queued = gauge("target_queue_depth", "Requests waiting for a target slot", "livesum")
        self.breaker = gauge(
            "circuit_breaker_state",
            "Breaker per target: 0 closed, 1 half-open, 2 open (the worst over workers)",
            "livemax",
        )

    def model_label(self, model: str | None) -> str:
        if model is None:
            return ""
        return model if model in self._models else OTHER_MODEL

    # ---- the request path --------------------------------------------------

    def observe(self, record: AccessRecord, now: float) -> None:
        """Count one finished request (``now``: perf_counter at its end)."""
        if record.path not in INFERENCE_PATHS or record.method == "GET":
            return
        model = record.model if record.model in self._models else self.model_label(record.model)
        target = record.target or ""
        key = (model, target, record.status, record.path)
        child = self._requests.get(key)
        if child is None:
            labels = (model, target, str(record.status), record.path)
            child = self._requests[key] = self.requests.labels(*labels)
        child.inc()
        series = self._by_model.get(model)
        if series is None:
            series = self._by_model[model] = _ModelSeries(self, model)
        series.duration.observe(now - record.started)
        if record.ttft is not None:
            series.ttft.observe(record.ttft)
        if record.inter_token is not None:
            series.itl.observe(record.inter_token)
        if record.prompt_tokens:
            series.prompt.inc(record.prompt_tokens)
        if record.completion_tokens:
            series.completion.inc(record.completion_tokens)
        if record.error_type is not None:
            self._count_error(model, target, record)
        if record.cache is not None:
            self._count_cache(model, record)
        if record.guardrails:
            self._count_findings(record.guardrails)

    def _count_findings(self, found: list[Finding]) -> None:
        """By guardrail and action, stages and kinds summed: one increment per
        series (an increment takes the metric's lock)."""
        totals: dict[tuple[str, str], int] = {}
        for guardrail, _, action, kinds in found:
            series = (guardrail, action)
            totals[series] = totals.get(series, 0) + len(kinds)
        for series, count in totals.items():
            child = self._findings.get(series)
            if child is None:
                child = self._findings[series] = self.guardrail_findings.labels(*series)
            child.inc(count)

    def _count_cache(self, model: str, record: AccessRecord) -> None:
        assert record.cache is not None
        self.cache_requests.labels(model, record.cache).inc()
        if record.cache == "hit":
            if record.cache_semantic:
                self.cache_semantic_hits.labels(model).inc()
            if record.tokens_saved:
                self.cache_tokens_saved.labels(model).inc(record.tokens_saved)

    def _count_error(self, model: str, target: str, record: AccessRecord) -> None:
        assert record.error_type is not None
        key = (model, target, record.error_type)
        child = self._errors.get(key)
        if child is None:
            child = self._errors[key] = self.errors.labels(*key)
        child.inc()
        if record.error_type == "rate_limit_error":
            self.rate_limited.labels(record.key_name or "anonymous").inc()

    # ---- scrape time -------------------------------------------------------

    def watch(
        self, models: Collection[str], targets: Iterable[Target], engines: EngineSource
    ) -> None:
        """The models requests are labelled with (others: ``other``), and the
        targets and local engines whose state the scrape reports."""
        self._models = frozenset(models)
        self._targets = list(targets)
        self.engines.source = self.scraper.source = engines

    def start(self) -> None:
        self.sample_targets()
        if self._multiprocess is not None:
            self._sampler = asyncio.create_task(self._sample_every(1.0))

    def sample_targets(self) -> None:
        for target in self._targets:
            health = target.health
            self.in_flight.labels(target.name).set(health.in_flight)
            self.queued.labels(target.name).set(health.waiting)
            self.breaker.labels(target.name).set(BREAKER_VALUES[health.state])

    async def _sample_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            self.sample_targets()

    async def render(self) -> bytes:
        """The exposition text: the gateway's own series, then the engines'."""
        self.sample_targets()
        scraped = await self.scraper.scrape()
        return generate_latest(self.registry) + generate_latest(Families(scraped))

    async def aclose(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        await self.scraper.aclose()
        if self._multiprocess is not None:
            # Drops this worker's live gauges; its counters keep adding up.
            mark_process_dead(os.getpid(), str(self._multiprocess))
