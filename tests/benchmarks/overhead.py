"""What the gateway adds to a request, against a direct call, on one core.

``python -m tests.benchmarks.overhead`` runs workloads (a)-(f) and prints a
markdown table; the table and a JSON file land in ``--out`` (bench-results/).

  (a) non-streaming, concurrency 1: added p50/p99 latency
  (b) non-streaming, concurrency 64, 20 s: requests/s
  (c) streaming (16 chunks), concurrency 64: streams/s, time to first token
  (g) the same, but the mock sends each chunk in its own write, 2 ms apart,
      as a model would: CPU per chunk when nothing can be batched
  (k) the pii guardrail on input and output, against the gateway without it
      (alternating rounds and side by side)
  (l) a cache hit's latency, against the upstream answering directly
  (m) "as deployed" against plain, non-streaming and streaming, in
      alternating rounds (the ratio the README's goal is stated in), and
      side by side (CPU per request, both driven at once)
  (d) soak, 100,000 requests: gateway RSS along the way
  (e) startup: process start to /health ready, no engines
  (h) serve --workers 1 vs 2, unpinned: what a second worker adds
  (i) /v1/responses next to /v1/chat/completions, concurrency 1: added latency
  (j) a 20-turn conversation rebuilt from Redis: added latency
  (f) a real vLLM CPU engine on a tiny checkpoint: completion tokens/s

``--smoke`` shrinks every load to seconds (CI); ``--compare`` also measures,
the same way: the gateway's other configurations (``plain``: no key or
limits; ``deployed``: plus the audit log; ``aiohttp``: aiohttp's client as the
transport), a naive FastAPI + httpx pass-through (``fastapi``), and LiteLLM's
proxy (``litellm``, installed once in its own venv).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.benchmarks import report
from tests.benchmarks.configs import GATEWAY_VARIANTS, with_cache, with_pii_guardrail
from tests.benchmarks.engine import through_engine
from tests.benchmarks.feature_workloads import cache_hit, pii_overhead
from tests.benchmarks.loads import FULL, SMOKE, Sizes
from tests.benchmarks.mock_upstream import MODEL as MOCK_MODEL
from tests.benchmarks.paired import deployed_vs_plain
from tests.benchmarks.procs import Server
from tests.benchmarks.responses import rebuild_from_redis, responses_overhead
from tests.benchmarks.subjects import (
    Subject,
    direct_subject,
    start_fastapi_probe,
    start_gateway,
    start_litellm,
    start_mock,
)
from tests.benchmarks.system import machine_info
from tests.benchmarks.workloads import (
    WorkloadResult,
    latency_at_one,
    paced_streaming,
    scaling,
    soak,
    startup,
    streaming,
    throughput,
)

WORKLOADS = "abcgiklmdehjf"  # run in this order: the steady ones against one mock first
SMOKE_WORKLOADS = "abcgeh"
# (upstream base url, upstream model, log dir) -> a started subject
Starter = Callable[[str, str, Path], Subject]


def _gateway_starter(variant: str) -> Starter:
    return lambda url, model, logs: start_gateway(logs, url, model, variant)


STARTERS: dict[str, Starter] = {
    **{variant: _gateway_starter(variant) for variant in GATEWAY_VARIANTS},
    "fastapi": lambda url, model, logs: start_fastapi_probe(logs, url, model),
    "litellm": lambda url, model, logs: start_litellm(logs, url, model),
}
COMPARABLE = [name for name in STARTERS if name != "gateway"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="tiny counts, a few seconds (CI)")
    parser.add_argument(
        "--compare", default="", help=f"also measure, e.g. plain,deployed: {','.join(COMPARABLE)}"
    )
    parser.add_argument("--only", default="", help="workloads to run, e.g. a,b,c")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    args.compare = [c for c in args.compare.split(",") if c]
    if any(c not in COMPARABLE for c in args.compare):
        parser.error(f"--compare takes: {','.join(COMPARABLE)}")
    selected = args.only.replace(",", "") or (SMOKE_WORKLOADS if args.smoke else WORKLOADS)
    if any(w not in WORKLOADS for w in selected):
        parser.error(f"--only takes workloads among {','.join(WORKLOADS)}")
    args.workloads = [w for w in WORKLOADS if w in selected]
    return args


def run_against_mock(
    workloads: list[str], subjects: list[str], sizes: Sizes, logs: Path
) -> list[WorkloadResult]:
    """(a)-(e) and (g)-(m): every subject in front of the same mock upstream."""
    results: list[WorkloadResult] = []
    mock = start_mock(logs)
    upstream = mock.url + "/v1"

    def starter(name: str) -> Callable[[], Subject]:
        return lambda: STARTERS[name](upstream, MOCK_MODEL, logs)

    try:
        steady = [w for w in workloads if w in "abcgi"]
        if steady:
            results += _steady_workloads(steady, mock, [starter(s) for s in subjects], sizes)
        if "k" in workloads or "l" in workloads:
            results += _feature_workloads(workloads, mock, upstream, sizes, logs)
        if "m" in workloads:
            print("(m) as deployed vs plain", flush=True)
            results.append(deployed_vs_plain(starter("plain"), starter("deployed"), sizes))
        if "d" in workloads:
            print("(d) soak", flush=True)
            results.append(soak(starter("gateway"), sizes))
            if len(subjects) > 1:
                results[-1].notes.append("soak measures the gateway only")
        if "h" in workloads:
            print("(h) scaling", flush=True)
            results.append(
                scaling(lambda n: start_gateway(logs, upstream, MOCK_MODEL, workers=n), sizes)
            )
        if "e" in workloads:
            print("(e) startup", flush=True)
            repeats = {name: sizes.startup_repeats if name == "gateway" else 1 for name in subjects}
            results.append(startup({name: starter(name) for name in subjects}, repeats))
        if "j" in workloads:
            print("(j) conversation rebuilt from Redis", flush=True)
            results.append(rebuild_from_redis(direct_subject(mock, MOCK_MODEL), sizes, logs))
    finally:
        mock.stop()
    return results


def _steady_workloads(
    workloads: list[str], mock: Server, starters: list[Callable[[], Subject]], sizes: Sizes
) -> list[WorkloadResult]:
    subjects = [direct_subject(mock, MOCK_MODEL)]
    try:
        for start in starters:
            subjects.append(start())
        steps = {
            "a": latency_at_one,
            "b": throughput,
            "c": streaming,
            "g": paced_streaming,
            "i": responses_overhead,
        }
        results = []
        for workload in workloads:
            print(f"({workload})", flush=True)
            results.append(steps[workload](subjects, sizes))
        return results
    finally:
        for subject in subjects:
            if subject.server is not None:
                subject.server.stop()


def _feature_workloads(
    workloads: list[str], mock: Server, upstream: str, sizes: Sizes, logs: Path
) -> list[WorkloadResult]:
    """(k) and (l): the gateway with its guardrails or its cache switched on."""
    direct = direct_subject(mock, MOCK_MODEL)

    def start(name: str, features: Any) -> Subject:
        return start_gateway(logs, upstream, MOCK_MODEL, name=name, features=features)

    results = []
    if "k" in workloads:
        print("(k) pii guardrail", flush=True)
        results.append(pii_overhead(direct, start, with_pii_guardrail, sizes))
    if "l" in workloads:
        print("(l) cache hit", flush=True)
        results.append(cache_hit(direct, start, with_cache, sizes))
    return results


def _engine_starter(name: str, logs: Path) -> Callable[[str, str], Subject]:
    def start(upstream: str, model: str) -> Subject:
        return STARTERS[name](upstream, model, logs)

    return start


def run_engine(subjects: list[str], sizes: Sizes, logs: Path) -> WorkloadResult:
    print("(f) vLLM engine", flush=True)
    starters = {name: _engine_starter(name, logs) for name in subjects}
    try:
        return through_engine(logs, sizes, starters)
    except RuntimeError as exc:
        pending = WorkloadResult("f", "vLLM CPU engine on a tiny checkpoint", {})
        pending.notes.append(f"pending: {str(exc).splitlines()[0]}")
        print(f"  (f) pending: {exc}", file=sys.stderr, flush=True)
        return pending


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    subjects = ["gateway", *args.compare]
    meta: dict[str, Any] = {
        "mode": "smoke" if args.smoke else "full",
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": shlex.join(
            ["python", "-m", "tests.benchmarks.overhead", *(argv or sys.argv[1:])]
        ),
        "machine": machine_info(),
        "layout": {"gateway_core": 0, "upstream_and_driver_core": 1},
    }
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vllm-gateway-bench-") as tmp:
        logs = Path(tmp)
        results = run_against_mock([w for w in args.workloads if w != "f"], subjects, sizes, logs)
        if "f" in args.workloads:
            results.append(run_engine(subjects, sizes, logs))
    meta["seconds"] = round(time.perf_counter() - began, 1)
    table_path, json_path = report.write(results, meta, args.out)
    print()
    print(table_path.read_text())
    print(f"wrote {table_path} and {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
