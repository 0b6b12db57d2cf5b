"""Two configurations of the gateway compared in alternating rounds.

On a shared machine the same build measures ±25% from one 20-second run to
the next, so "B is 80% of A" from one run of each says more about the minute
each ran in than about B. Here both gateways run at once (each alone on the
gateway core while measured), and each round measures A then B, the next B
then A (A-B-B-A ...): every ratio compares two runs seconds apart, and the
median of the rounds' ratios is the figure. The gateway's own CPU per
request, read from /proc, is paired the same way.

(k) with and without the ``pii`` guardrail and (m) "as deployed" against
``plain`` are measured this way.
"""

from __future__ import annotations

import statistics
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
            for index, (a, b) in enumerate(pairs):
                result.runs[f"{what}-{index}-plain"] = a
                result.runs[f"{what}-{index}-deployed"] = b
    finally:
        for subject in (plain, deployed):
            if subject.server is not None:
                subject.server.stop()
    return result
