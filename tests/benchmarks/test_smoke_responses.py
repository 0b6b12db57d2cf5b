"""Workloads (i) and (j), the Responses API's, keep working: a smoke run gives
real, error-free figures for each (no speed is asserted on a shared machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.benchmarks.test_smoke import _metric
from tests.helpers import ROOT


def test_smoke_run_of_the_responses_workloads(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.overhead",
            "--smoke",
            "--only",
            "i,j",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [json_path] = tmp_path.glob("overhead-*.json")
    workloads = {w["id"]: w for w in orjson.loads(json_path.read_bytes())["workloads"]}
    assert sorted(workloads) == ["i", "j"]
    for workload in workloads.values():
        for subject, run in workload["runs"].items():
            assert run["errors"] == 0, (workload["id"], subject, run["error_samples"])
            assert run["requests"] > 0
    responses = _metric(workloads["i"], "latency p50, /v1/responses")
    assert 0 < responses["direct"] < responses["gateway"]
    assert _metric(workloads["i"], "CPU per request, /v1/responses")["gateway"] > 0
    rebuilt = _metric(workloads["j"], "latency p50, 20-turn history from Redis")
    assert 0 < rebuilt["direct"] < rebuilt["gateway"]
    assert _metric(workloads["j"], "CPU per request, 20-turn history from Redis")["gateway"] > 0
    assert "added by the rebuild" in done.stdout
