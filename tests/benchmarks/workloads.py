"""Workloads (a)-(e), (g) and (h): each drives every subject the same way and turns the
driver's summaries into metrics compared against ``direct``."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.benchmarks.loads import CHAT, PACE_MS, PACED_STREAM, STREAM, Load, Sizes, send
from tests.benchmarks.subjects import Subject
from tests.benchmarks.system import rss_mb

# How a subject's figure reads against direct's: a latency is "added"
# (subject minus direct), a rate is a "ratio" (subject / direct), and an
# "absolute" figure has no direct counterpart (memory, startup).
Comparison = Literal["added", "ratio", "absolute"]


@dataclass(slots=True)
class Metric:
    name: str
    unit: str
    comparison: Comparison
    values: dict[str, float | None]  # subject name -> figure


@dataclass(slots=True)
class WorkloadResult:
    id: str
    title: str
    load: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # subject -> driver summary
    notes: list[str] = field(default_factory=list)

    def metric(
        self,
        name: str,
        unit: str,
        comparison: Comparison,
        pick: Callable[[dict[str, Any]], float | None],
        runs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Add a metric picked from each subject's run (``runs`` defaults to this result's)."""
        source = self.runs if runs is None else runs
        values: dict[str, float | None] = {n: pick(run) for n, run in source.items()}
        self.metrics.append(Metric(name, unit, comparison, values))


def _cpu_per_request(run: dict[str, Any]) -> float | None:
    """The subject process's own CPU per request (None for direct: no subject process)."""
    value = run.get("subject_cpu_ms_per_request")
    return None if value is None else float(value)


def _drive_all(
    result: WorkloadResult, subjects: list[Subject], load: Load, body: dict[str, Any]
) -> None:
    for subject in subjects:
        print(f"  ({result.id}) {subject.name} ...", flush=True)
        result.runs[subject.name] = send(subject, load, body)


def latency_at_one(subjects: list[Subject], sizes: Sizes) -> WorkloadResult:
    load = sizes.latency
    result = WorkloadResult("a", "non-streaming, concurrency 1", load.describe())
    _drive_all(result, subjects, load, CHAT)
    result.metric("latency p50", "ms", "added", lambda r: r["latency_ms"]["p50"])
    result.metric("latency p99", "ms", "added", lambda r: r["latency_ms"]["p99"])
    return result


def throughput(subjects: list[Subject], sizes: Sizes) -> WorkloadResult:
    load = sizes.throughput
    result = WorkloadResult("b", f"non-streaming, concurrency {load.concurrency}", load.describe())
    _drive_all(result, subjects, load, CHAT)
    result.metric("requests/s", "req/s", "ratio", lambda r: r["per_second"])
    result.metric("latency p99", "ms", "added", lambda r: r["latency_ms"]["p99"])
    result.metric("CPU per request", "ms", "absolute", _cpu_per_request)
    return result


def streaming(subjects: list[Subject], sizes: Sizes) -> WorkloadResult:
    load = sizes.streaming
    result = WorkloadResult(
        "c", f"streaming 16 chunks, concurrency {load.concurrency}", load.describe()
    )
    _drive_all(result, subjects, load, STREAM)
    result.metric("streams/s", "streams/s", "ratio", lambda r: r["per_second"])
    result.metric("TTFT p50", "ms", "added", lambda r: r["ttft_ms"]["p50"])
    result.metric("TTFT p99", "ms", "added", lambda r: r["ttft_ms"]["p99"])
    result.metric("CPU per stream", "ms", "absolute", _cpu_per_request)
    _check_events(result)
    return result


def paced_streaming(subjects: list[Subject], sizes: Sizes) -> WorkloadResult:
    """Streams as a model sends them: each event in its own write, so nothing
    can be batched and every chunk costs the gateway a read and a write."""
    load = sizes.paced
    title = f"streaming 16 chunks, one per write {PACE_MS} ms apart, concurrency {load.concurrency}"
    result = WorkloadResult("g", title, load.describe())
    _drive_all(result, subjects, load, PACED_STREAM)
    result.metric("streams/s", "streams/s", "ratio", lambda r: r["per_second"])
    result.metric("TTFT p50", "ms", "added", lambda r: r["ttft_ms"]["p50"])
    result.metric("CPU per stream", "ms", "absolute", _cpu_per_request)

    def per_chunk(run: dict[str, Any]) -> float | None:
        per_stream = _cpu_per_request(run)
        return None if per_stream is None else round(per_stream * 1000 / EVENTS_PER_STREAM, 1)

    result.metric("CPU per chunk", "µs", "absolute", per_chunk)
    _check_events(result)
    return result


# 16 content events + the usage event + [DONE]: anything else is a broken relay.
EVENTS_PER_STREAM = 18


def _check_events(result: WorkloadResult) -> None:
    for name, run in result.runs.items():
        if run["requests"] and run["events_per_reply"] != EVENTS_PER_STREAM:
            events = run["events_per_reply"]
            result.notes.append(
                f"{name}: {events} SSE events per stream, expected {EVENTS_PER_STREAM}"
            )


def scaling(start: Callable[[int], Subject], sizes: Sizes) -> WorkloadResult:
    """``serve --workers 1`` and ``--workers 2``, neither pinned, under the load
    of (b): what a second worker adds when it has to share the machine's second
    core with the mock and the driver."""
    load = sizes.throughput
    title = f"serve --workers 1 and 2, unpinned, non-streaming, concurrency {load.concurrency}"
    result = WorkloadResult("h", title, load.describe())
    per_second: dict[int, float] = {}
    for workers in (1, 2):
        subject = start(workers)
        assert subject.server is not None
        print(f"  (h) --workers {workers} ...", flush=True)
        try:
            run = send(subject, load, CHAT)
        finally:
            subject.server.stop()
        result.runs[f"gateway --workers {workers}"] = run
        per_second[workers] = run["per_second"]
        name = f"requests/s, --workers {workers}"
        result.metrics.append(Metric(name, "req/s", "absolute", {"gateway": per_second[workers]}))
    gain = round(100.0 * per_second[2] / per_second[1], 1) if per_second[1] else None
    result.metrics.append(Metric("--workers 2 vs 1", "%", "absolute", {"gateway": gain}))
    return result


def soak(start: Callable[[], Subject], sizes: Sizes) -> WorkloadResult:
    """A fresh gateway process: its RSS when ready and as the request count
    passes each checkpoint."""
    load = sizes.soak
    result = WorkloadResult("d", f"soak, {load.requests:,} requests", load.describe())
    subject = start()
    assert subject.server is not None
    pid = subject.server.pid
    rss = {"ready": rss_mb(pid)}

    def sample(completed: int) -> None:
        rss[f"{completed:,}"] = rss_mb(pid)

    print(f"  (d) {subject.name} ...", flush=True)
    try:
        result.runs[subject.name] = send(subject, load, CHAT, on_checkpoint=sample)
    finally:
        subject.server.stop()
    for label, value in rss.items():
        result.metrics.append(Metric(f"RSS at {label}", "MB", "absolute", {subject.name: value}))
    checkpoints = [f"{c:,}" for c in load.checkpoints]
    if len(checkpoints) >= 2 and all(c in rss for c in checkpoints):
        middle, last = rss[checkpoints[-2]], rss[checkpoints[-1]]
        growth = round(100.0 * (last - middle) / middle, 1)
        result.metrics.append(
            Metric(
                f"RSS growth {checkpoints[-2]} -> {checkpoints[-1]}",
                "%",
                "absolute",
                {subject.name: growth},
            )
        )
    result.metrics.append(
        Metric(
            "requests/s during soak",
            "req/s",
            "absolute",
            {subject.name: result.runs[subject.name]["per_second"]},
        )
    )
    return result


def startup(starters: dict[str, Callable[[], Subject]], repeats: dict[str, int]) -> WorkloadResult:
    """Process start to its health endpoint answering, no engines; median of a few starts."""
    result = WorkloadResult("e", "startup to /health ready, no engines", {"repeats": repeats})
    median: dict[str, float | None] = {}
    worst: dict[str, float | None] = {}
    for name, start in starters.items():
        times = []
        for _ in range(repeats[name]):
            subject = start()
            assert subject.server is not None
            times.append(subject.server.ready_after)
            subject.server.stop()
        print(f"  (e) {name}: {', '.join(f'{t:.3f}' for t in times)} s", flush=True)
        median[name] = round(statistics.median(times), 3)
        worst[name] = round(max(times), 3)
    result.metrics.append(Metric("startup median", "s", "absolute", median))
    result.metrics.append(Metric("startup max", "s", "absolute", worst))
    return result
