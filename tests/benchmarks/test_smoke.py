"""The benchmark harness keeps working: a smoke run produces a sane table and JSON.

No speed is asserted (shared machines are noisy); the figures only have to be
real: non-zero, error-free, and the gateway compared against direct.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.helpers import ROOT


def _metric(workload: dict[str, Any], name: str) -> dict[str, float]:
    for metric in workload["metrics"]:
        if metric["name"] == name:
            return dict(metric["values"])
    raise AssertionError(f"workload ({workload['id']}) has no metric {name!r}")


def test_smoke_run_writes_table_and_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.overhead", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [table_path] = tmp_path.glob("overhead-*.md")
    [json_path] = tmp_path.glob("overhead-*.json")
    results = orjson.loads(json_path.read_bytes())

    assert results["mode"] == "smoke"
    assert results["machine"]["cores"] >= 1 and results["machine"]["cpu_model"]
    workloads = {w["id"]: w for w in results["workloads"]}
    assert sorted(workloads) == ["a", "b", "c", "e", "g", "h"]
    for workload in workloads.values():
        for subject, run in workload["runs"].items():
            assert run["errors"] == 0, (workload["id"], subject, run["error_samples"])
            assert run["requests"] > 0

    # The gateway's extra hop shows at the median even on a noisy machine.
    p50 = _metric(workloads["a"], "latency p50")
    assert 0 < p50["direct"] < p50["gateway"]
    assert _metric(workloads["a"], "latency p99")["gateway"] > 0
    assert _metric(workloads["b"], "requests/s")["gateway"] > 0
    assert _metric(workloads["c"], "streams/s")["gateway"] > 0
    assert _metric(workloads["c"], "TTFT p50")["gateway"] > 0
    # Every stream arrived whole through the gateway: 16 chunks, usage, [DONE].
    assert workloads["c"]["runs"]["gateway"]["events_per_reply"] == 18
    assert workloads["c"]["notes"] == []
    # Paced by the mock: the first chunk leaves 2 ms after the head.
    assert workloads["g"]["runs"]["gateway"]["events_per_reply"] == 18
    assert workloads["g"]["notes"] == []
    assert _metric(workloads["g"], "CPU per chunk")["gateway"] > 0
    assert _metric(workloads["g"], "TTFT p50")["direct"] >= 2
    assert 0 < _metric(workloads["e"], "startup median")["gateway"] < 30
    # Two workers served the load (the figure itself is for a quiet machine).
    assert _metric(workloads["h"], "requests/s, --workers 2")["gateway"] > 0
    assert workloads["h"]["runs"]["gateway --workers 2"]["subject_cpu_percent"] > 0

    table = table_path.read_text()
    assert "| (a) non-streaming, concurrency 1 | latency p50 (ms) |" in table
    assert "Gateway vs direct" in table
    assert table in done.stdout
