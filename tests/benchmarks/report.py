"""The results as a markdown table (printed and saved) and a JSON file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson

from tests.benchmarks.workloads import Metric, WorkloadResult

COMPARED = ("gateway", "plain", "deployed", "aiohttp", "fastapi", "litellm")
LABELS = {
    "direct": "Direct",
    "gateway": "Gateway",
    "plain": "Gateway, plain",
    "deployed": "Gateway as deployed",
    "aiohttp": "Gateway, aiohttp transport",
    "fastapi": "FastAPI + httpx",
    "litellm": "LiteLLM",
}


def number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def against_direct(metric: Metric, subject: str) -> str:
    value, direct = metric.values.get(subject), metric.values.get("direct")
    if metric.comparison == "absolute" or value is None or direct is None:
        return ""
    if metric.comparison == "added":
        return f"{value - direct:+.3f} {metric.unit}"
    return f"{100.0 * value / direct:.1f}%" if direct else ""


def subjects_in(results: list[WorkloadResult]) -> list[str]:
    seen = {name for r in results for m in r.metrics for name in m.values}
    return [name for name in ("direct", *COMPARED) if name in seen]


def results_table(results: list[WorkloadResult]) -> str:
    subjects = subjects_in(results)
    header = ["Workload", "Metric"]
    for name in subjects:
        header.append(LABELS[name])
        if name != "direct":
            header.append(f"{LABELS[name]} vs direct")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        for metric in result.metrics:
            row = [f"({result.id}) {result.title}", f"{metric.name} ({metric.unit})"]
            for name in subjects:
                row.append(number(metric.values.get(name)))
                if name != "direct":
                    row.append(against_direct(metric, name))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def cpu_table(results: list[WorkloadResult]) -> str:
    lines = [
        "| Workload | Subject | core 0 busy % (gateway) "
        "| core 1 busy % (mock + driver, or engine) | subject process CPU % | errors |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        for name, run in result.runs.items():
            # /proc/stat counts 10 ms ticks: a window under a second says little.
            short = run.get("seconds", 1.0) < 1.0
            cpu = {"cpu0": "(short)", "cpu1": "(short)"} if short else run.get("cpu_busy") or {}
            lines.append(
                f"| ({result.id}) | {LABELS.get(name, name)} | {cpu.get('cpu0', '—')} | "
                f"{cpu.get('cpu1', '—')} | {run.get('subject_cpu_percent', '—')} | "
                f"{run.get('errors', 0)} |"
            )
    return "\n".join(lines)


def markdown(results: list[WorkloadResult], meta: dict[str, Any]) -> str:
    machine = meta["machine"]
    parts = [
        f"# Gateway overhead benchmark ({meta['mode']})",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"Python {machine['python']}; load average at start {machine['load_average_at_start']}.",
        "Layout: the gateway (or LiteLLM) alone on core 0; the mock upstream and the load "
        "driver on core 1; for (f) the vLLM engine alone on core 1 and the driver on core 0; "
        "for (h) nothing pinned. Direct = driver straight to the upstream, same run.",
        f"Command: `{meta['command']}`",
        "",
        results_table(results),
        "",
        "CPU busy during each measured window (from /proc/stat; core 0 busy above the "
        "subject's own CPU % is other processes on this shared machine):",
        "",
        cpu_table(results),
    ]
    notes = [f"- ({r.id}) {note}" for r in results for note in r.notes]
    if notes:
        parts += ["", "Notes:", *notes]
    return "\n".join(parts) + "\n"


def write(results: list[WorkloadResult], meta: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = meta["started"].replace(":", "").replace("-", "")
    table_path = out_dir / f"overhead-{stamp}.md"
    json_path = out_dir / f"overhead-{stamp}.json"
    table_path.write_text(markdown(results, meta))
    payload = {**meta, "workloads": [dataclasses.asdict(r) for r in results]}
    json_path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    return table_path, json_path
