"""Workloads (k), (l) and (m) keep working: a smoke run of the guardrail, cache
and as-deployed workloads gives error-free, real figures (no speed is asserted
here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.helpers import ROOT


def test_guardrail_and_cache_workloads_run(tmp_path: Path) -> None:
    command = ["--smoke", "--only", "k,l,m", "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.overhead", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [json_path] = tmp_path.glob("overhead-*.json")
    workloads = {w["id"]: w for w in orjson.loads(json_path.read_bytes())["workloads"]}
    assert sorted(workloads) == ["k", "l", "m"]
    for workload in workloads.values():
        for subject, run in workload["runs"].items():
            assert run["errors"] == 0, (workload["id"], subject, run["error_samples"])
            assert run["requests"] > 0
    metrics = {m["name"]: m["values"] for m in workloads["k"]["metrics"]}
    assert metrics["latency p50, with the pii guardrail"]["gateway"] > 0
    added = metrics["pii guardrail's added p50 (median of the rounds' differences)"]["gateway"]
    assert isinstance(added, float)
    latency_runs = sorted(name for name in workloads["k"]["runs"] if name.startswith("latency-"))
    rounds = [f"latency-{index}-{label}" for index in (0, 1) for label in ("with", "without")]
    assert latency_runs == [*rounds, "latency-direct"]
    assert metrics["requests/s, with pii (median of rounds)"]["gateway"] > 0
    share = "requests/s, with pii vs without pii: median of the rounds' ratios"
    assert metrics[share]["gateway"] > 0
    side = "requests/s by CPU per request, with pii vs without pii side by side (median of rounds)"
    assert metrics[side]["gateway"] > 0
    hit = {m["name"]: m["values"] for m in workloads["l"]["metrics"]}["latency p50"]
    assert hit["direct"] > 0 and hit["gateway"] > 0
    deployed = {m["name"]: m["values"]["gateway"] for m in workloads["m"]["metrics"]}
    for what in ("requests/s", "streams/s"):
        assert deployed[f"{what}, as deployed vs plain: median of the rounds' ratios"] > 0
        assert deployed[f"{what}, as deployed (median of rounds)"] > 0
    for noun in ("request", "stream"):
        side = f"{noun}s/s by CPU per {noun}, as deployed vs plain side by side (median of rounds)"
        assert deployed[side] > 0
