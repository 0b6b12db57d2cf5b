"""Workloads (k) and (l): what the guardrails and the response cache cost.

(k) the ``pii`` guardrail on input and output, against the same gateway
    without it: added latency at concurrency 1 and requests/s at 64. The
    prompt holds an e-mail address and a phone number, so every request
    masks two values and restores them; the answer is scanned too.
(l) a cache hit: the same temperature-0 request again and again at
    concurrency 1; every request after the first is answered from the
    in-memory cache, against the upstream answering directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.benchmarks.loads import CHAT, Sizes, send
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
    result = WorkloadResult("k", "pii guardrail on input and output, non-streaming", {})
    result.load = {"latency": sizes.latency.describe(), "throughput": sizes.throughput.describe()}
    runs: dict[str, dict[str, dict[str, Any]]] = {"latency": {}, "throughput": {}}
    runs["latency"]["direct"] = send(direct, sizes.latency, PII_CHAT)
    runs["throughput"]["direct"] = send(direct, sizes.throughput, PII_CHAT)
    for label, features in (("without", None), ("with", with_pii)):
        subject = start(f"gateway-{label}-pii", features)
        print(f"  (k) gateway {label} the pii guardrail ...", flush=True)
        try:
            runs["latency"][label] = send(subject, sizes.latency, PII_CHAT)
            runs["throughput"][label] = send(subject, sizes.throughput, PII_CHAT)
        finally:
            _stopped(subject)
    latency, rate = runs["latency"], runs["throughput"]
    p50 = {name: run["latency_ms"]["p50"] for name, run in latency.items()}
    per_second = {name: run["per_second"] for name, run in rate.items()}
    for label in ("without", "with"):
        title = f"{label} the pii guardrail"
        values = {"direct": p50["direct"], "gateway": p50[label]}
        result.metrics.append(Metric(f"latency p50, {title}", "ms", "added", values))
        values = {"direct": per_second["direct"], "gateway": per_second[label]}
        result.metrics.append(Metric(f"requests/s, {title}", "req/s", "ratio", values))
    added = round(p50["with"] - p50["without"], 3)
    share = round(100.0 * per_second["with"] / per_second["without"], 1)
    result.metrics.append(Metric("pii guardrail's added p50", "ms", "absolute", {"gateway": added}))
    result.metrics.append(Metric("requests/s with vs without", "%", "absolute", {"gateway": share}))
    # The gateway's own CPU per request: what the guardrail costs even when
    # other processes share the machine and the latencies above wander.
    cpu = {label: rate[label].get("subject_cpu_ms_per_request") for label in ("without", "with")}
    for label, value in cpu.items():
        name = f"CPU per request, {label} the pii guardrail"
        result.metrics.append(Metric(name, "ms", "absolute", {"gateway": value}))
    if cpu["with"] is not None and cpu["without"] is not None:
        extra = round(1000.0 * (cpu["with"] - cpu["without"]), 1)
        added_cpu = Metric("CPU the guardrail adds", "µs", "absolute", {"gateway": extra})
        result.metrics.append(added_cpu)
    result.runs = {f"{k}-{n}": run for k, by in runs.items() for n, run in by.items()}
    return result


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
