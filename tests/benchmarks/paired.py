"""Two configurations of the gateway compared in alternating rounds.

On a shared machine the same build measures ±25% from one 20-second run to
the next, so "B is 80% of A" from one run of each says more about the minute
each ran in than about B. Here both gateways run at once (each alone on the
gateway core while measured), and each round measures A then B, the next B
then A (A-B-B-A ...): every ratio compares two runs seconds apart, and the
median of the rounds' ratios is the figure. The gateway's own CPU per
request, read from /proc, is paired the same way.

On a bad day even seconds apart is too far: single rounds then spread from
66% to 91%. ``side_by_side`` goes further: both gateways are driven at the
same time (half the concurrency each), sharing the gateway core, so whatever
slows the machine slows both alike; the figure is the ratio of their CPU per
request (read from /proc), the rate each would serve alone on the core when
it is CPU-bound. Its rounds agree within a few percent.

(k) with and without the ``pii`` guardrail and (m) "as deployed" against
``plain`` are measured both ways.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
from collections.abc import Callable
from typing import Any

from tests.benchmarks.loads import CHAT, STREAM, Load, Sizes, send
from tests.benchmarks.subjects import Subject
from tests.benchmarks.workloads import Metric, WorkloadResult

Start = Callable[[], Subject]


def alternate(
    first: Subject, second: Subject, load: Load, body: dict[str, Any], rounds: int
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``rounds`` rounds, A-B then B-A: each round's (first's run, second's run)."""
    pairs = []
    for index in range(rounds):
        order = (first, second) if index % 2 == 0 else (second, first)
        runs = {subject.name: send(subject, load, body) for subject in order}
        pairs.append((runs[first.name], runs[second.name]))
    return pairs


def side_by_side(
    first: Subject, second: Subject, load: Load, body: dict[str, Any], rounds: int
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``rounds`` rounds, each driving both subjects at once with half of
    ``load``'s concurrency: each round's (first's run, second's run)."""
    half = dataclasses.replace(load, concurrency=max(1, load.concurrency // 2))

    def drive(subject: Subject, runs: list[dict[str, Any]]) -> None:
        runs.append(send(subject, half, body))

    pairs = []
    for _ in range(rounds):
        runs: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
        threads = [
            threading.Thread(target=drive, args=(subject, into))
            for subject, into in zip((first, second), runs, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pairs.append((runs[0][0], runs[1][0]))
    return pairs


def side_by_side_metric(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]], noun: str, labels: tuple[str, str]
) -> Metric:
    """The median of the rounds' ratios of CPU per ``noun`` (first's / second's,
    in %): the second's rate as a share of the first's, when CPU-bound."""
    cpu = [(_cpu(a), _cpu(b)) for a, b in pairs]
    ratios = [100.0 * a / b for a, b in cpu if a is not None and b]
    base, other = labels
    name = f"{noun}s/s by CPU per {noun}, {other} vs {base} side by side (median of rounds)"
    return Metric(name, "%", "absolute", {"gateway": round(statistics.median(ratios), 1)})


def _cpu(run: dict[str, Any]) -> float | None:
    value = run.get("subject_cpu_ms_per_request")
    return None if value is None else float(value)


def paired_metrics(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    what: str,
    unit: str,
    noun: str,
    labels: tuple[str, str],
) -> list[Metric]:
    """Medians of each side, the median of the rounds' ratios (second / first,
    in %), and the CPU per request the second adds (µs), from paired rounds."""
    base, other = labels
    rates = [(a["per_second"], b["per_second"]) for a, b in pairs]
    ratios = [100.0 * b / a for a, b in rates if a]
    metrics = [
        Metric(
            f"{what}, {base} (median of rounds)",
            unit,
            "absolute",
            {"gateway": round(statistics.median(a for a, _ in rates), 1)},
        ),
        Metric(
            f"{what}, {other} (median of rounds)",
            unit,
            "absolute",
            {"gateway": round(statistics.median(b for _, b in rates), 1)},
        ),
        Metric(
            f"{what}, {other} vs {base}: median of the rounds' ratios",
            "%",
            "absolute",
            {"gateway": round(statistics.median(ratios), 1)},
        ),
    ]
    cpu = [(_cpu(a), _cpu(b)) for a, b in pairs]
    added = [1000.0 * (b - a) for a, b in cpu if a is not None and b is not None]
    if added:
        name = f"CPU per {noun} {other} adds (median of rounds)"
        metrics.append(
            Metric(name, "µs", "absolute", {"gateway": round(statistics.median(added), 1)})
        )
    return metrics


def keep_runs(
    runs: dict[str, Any],
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    key: str,
    labels: tuple[str, str],
) -> None:
    """Each round's two runs into ``runs``, under ``key`` formatted with the
    round's index and the run's label (``"round-{index}-{label}"``)."""
    for index, pair in enumerate(pairs):
        for label, run in zip(labels, pair, strict=True):
            runs[key.format(index=index, label=label)] = run


def describe(pairs: list[tuple[dict[str, Any], dict[str, Any]]], labels: tuple[str, str]) -> str:
    """Each round's two rates, for the notes."""
    rounds = "; ".join(f"{a['per_second']:.0f} / {b['per_second']:.0f}" for a, b in pairs)
    return f"rounds ({labels[0]} / {labels[1]}): {rounds}"


def deployed_vs_plain(start_plain: Start, start_deployed: Start, sizes: Sizes) -> WorkloadResult:
    """(m): the gateway as deployed (API key, rate limits, access log to a
    file, the audit log with its default redaction) against ``plain``,
    non-streaming and streaming, in alternating rounds."""
    load, rounds = sizes.paired, sizes.paired_rounds
    result = WorkloadResult("m", "as deployed vs plain, alternating rounds", load.describe())
    result.load["rounds"] = rounds
    plain, deployed = start_plain(), start_deployed()
    labels = ("plain", "as deployed")
    try:
        shapes = (
            (CHAT, "requests/s", "req/s", "request"),
            (STREAM, "streams/s", "streams/s", "stream"),
        )
        for body, what, unit, noun in shapes:
            print(f"  (m) {what}: {rounds} rounds ...", flush=True)
            pairs = alternate(plain, deployed, load, body, rounds)
            result.metrics += paired_metrics(pairs, what, unit, noun, labels)
            result.notes.append(f"{what} {describe(pairs, labels)}")
            print(f"  (m) {what}: {rounds} rounds side by side ...", flush=True)
            together = side_by_side(plain, deployed, load, body, rounds)
            result.metrics.append(side_by_side_metric(together, noun, labels))
            names = ("plain", "deployed")
            keep_runs(result.runs, pairs, what + "-{index}-{label}", names)
            keep_runs(result.runs, together, what + "-{index}-side-by-side-{label}", names)
    finally:
        for subject in (plain, deployed):
            if subject.server is not None:
                subject.server.stop()
    return result
