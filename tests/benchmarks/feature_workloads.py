"""Workloads (k) and (l): what the guardrails and the response cache cost.

(k) the ``pii`` guardrail on input and output, against the same gateway
    without it: latency at concurrency 1 and requests/s at 64, each in
    alternating rounds of the two (``paired.py``), and CPU per request side
    by side. The prompt holds an e-mail address and a phone number, so every
    request masks two values and restores them; the answer is scanned too.
(l) a cache hit: the same temperature-0 request again and again at
    concurrency 1; every request after the first is answered from the
    in-memory cache, against the upstream answering directly.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tests.benchmarks.loads import CHAT, Load, Sizes, send
from tests.benchmarks.paired import (
    alternate,
    describe,
    keep_runs,
    paired_metrics,
    side_by_side,
    side_by_side_metric,
)
from tests.benchmarks.subjects import Subject
from tests.benchmarks.workloads import Metric, WorkloadResult

PII_CHAT = {
    **CHAT,
    "messages": [
        {
            "role": "user",
            "content": "Write a two-line reply to jane.doe@example.com and ask her to call "
            "+1 (555) 123-4567 about the meeting notes of last week.",
        }
    ],
}
HIT_CHAT = {**CHAT, "temperature": 0}
# (name, extra config) -> a started gateway subject
Start = Callable[[str, Callable[[dict[str, Any]], dict[str, Any]] | None], Subject]


def _stopped(subject: Subject) -> None:
    if subject.server is not None:
        subject.server.stop()


def pii_overhead(direct: Subject, start: Start, with_pii: Any, sizes: Sizes) -> WorkloadResult:
    """Latency at concurrency 1, then requests/s, each in alternating rounds
    of the two gateways; then requests/s side by side (``paired.py``)."""
    result = WorkloadResult("k", "pii guardrail on input and output, non-streaming", {})
    rounds = sizes.paired_rounds
    latency_round = _latency_round(sizes.latency, rounds)
    result.load = {
        "latency": {**latency_round.describe(), "rounds": rounds},
        "throughput": {**sizes.paired.describe(), "rounds": rounds},
    }
    direct_run = send(direct, sizes.latency, PII_CHAT)
    without, with_ = start("gateway-without-pii", None), start("gateway-with-pii", with_pii)
    try:
        print(f"  (k) latency, {rounds} alternating rounds ...", flush=True)
        latency = alternate(without, with_, latency_round, PII_CHAT, rounds)
        print(f"  (k) requests/s, {rounds} alternating rounds ...", flush=True)
        pairs = alternate(without, with_, sizes.paired, PII_CHAT, rounds)
        print(f"  (k) requests/s, {rounds} rounds side by side ...", flush=True)
        together = side_by_side(without, with_, sizes.paired, PII_CHAT, rounds)
    finally:
        _stopped(without)
        _stopped(with_)
    result.metrics += _latency_metrics(direct_run, latency)
    labels = ("without pii", "with pii")
    result.metrics += paired_metrics(pairs, "requests/s", "req/s", "request", labels)
    result.metrics.append(side_by_side_metric(together, "request", labels))
    result.notes.append(describe(pairs, ("without", "with")))
    result.runs = {"latency-direct": direct_run}
    names = ("without", "with")
    keep_runs(result.runs, latency, "latency-{index}-{label}", names)
    keep_runs(result.runs, pairs, "round-{index}-{label}", names)
    keep_runs(result.runs, together, "side-by-side-{index}-{label}", names)
    return result


def _latency_round(load: Load, rounds: int) -> Load:
    """One of ``rounds`` rounds sharing ``load``'s requests and warmup."""
    return replace(load, requests=(load.requests or 0) // rounds, warmup=load.warmup // rounds)


def _latency_metrics(
    direct_run: dict[str, Any], pairs: list[tuple[dict[str, Any], dict[str, Any]]]
) -> list[Metric]:
    """Each gateway's p50 (the median of its rounds') over direct's, and the
    guardrail's added p50: the median of the rounds' differences, each
    between two runs seconds apart, so the machine's drift cancels out."""
    p50 = [(a["latency_ms"]["p50"], b["latency_ms"]["p50"]) for a, b in pairs]
    metrics = [
        Metric(
            f"latency p50, {label} the pii guardrail",
            "ms",
            "added",
            {"direct": direct_run["latency_ms"]["p50"], "gateway": statistics.median(side)},
        )
        for label, side in (("without", [a for a, _ in p50]), ("with", [b for _, b in p50]))
    ]
    added = round(statistics.median(b - a for a, b in p50), 3)
    name = "pii guardrail's added p50 (median of the rounds' differences)"
    metrics.append(Metric(name, "ms", "absolute", {"gateway": added}))
    return metrics


def cache_hit(direct: Subject, start: Start, with_cache: Any, sizes: Sizes) -> WorkloadResult:
    load = sizes.latency
    result = WorkloadResult("l", "cache hit, non-streaming, concurrency 1", load.describe())
    result.runs["direct"] = send(direct, load, HIT_CHAT)
    runs: dict[str, dict[str, Any]] = {}
    for label, features in (("uncached", None), ("gateway", with_cache)):
        subject = start(f"gateway-{label}", features)
        print(f"  (l) {label} ...", flush=True)
        try:
            runs[label] = send(subject, load, HIT_CHAT)
        finally:
            _stopped(subject)
    result.runs["gateway"] = runs["gateway"]
    result.metric("latency p50", "ms", "added", lambda r: r["latency_ms"]["p50"])
    result.metric("latency p99", "ms", "added", lambda r: r["latency_ms"]["p99"])
    uncached = runs["uncached"]["latency_ms"]["p50"]
    result.metrics.append(
        Metric(
            "latency p50, same gateway without cache",
            "ms",
            "added",
            {
                "direct": result.runs["direct"]["latency_ms"]["p50"],
                "gateway": uncached,
            },
        )
    )
    for label, run in runs.items():
        name = "CPU per request, " + ("hit" if label == "gateway" else "without cache")
        value = run.get("subject_cpu_ms_per_request")
        result.metrics.append(Metric(name, "ms", "absolute", {"gateway": value}))
    result.runs["gateway-uncached"] = runs["uncached"]
    return result
