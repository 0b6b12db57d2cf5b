"""Workload (f): a real vLLM CPU engine on a tiny checkpoint, driven directly
and through the gateway (and LiteLLM), completion tokens/s at 32 concurrent
requests, streaming and not.

The engine has the load core to itself; the driver runs on the gateway's
core. With the driver beside the engine, the figure measured the layout: a
driver reading a stream straight from the engine reads it in bursts (it runs
only when the engine yields the core), while through the gateway each chunk
arrives on its own and wakes the driver, preempting the engine.

The driver's workers start spread over a second (``spread_start``): started
together, 32 requests of exactly ``max_tokens`` tokens stay in lockstep, one
prefill step for all then identical decode steps, and on this CPU the engine
served about 20% more tokens/s in that regime. Direct stays in it; any hop in
between loosens it, so the ratio measured the regime, not the hop."""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.benchmarks.loads import PROMPT, Load, Sizes, send
from tests.benchmarks.procs import LOAD_CORE, Server, pinned, python_module
from tests.benchmarks.subjects import Subject
from tests.benchmarks.workloads import WorkloadResult
from tests.helpers import ROOT, free_port

CHECKPOINTS = Path.home() / ".cache" / "vllm-gateway-bench" / "checkpoints"
SERVED_NAME = "tiny-llama3"
FAMILY = "llama3"
# Build through the checkpoint builder's public function, in a subprocess so
# this process never imports torch.
_BUILD = (
    "import sys; from pathlib import Path; from gateway.engines.tiny import build_checkpoint; "
    "print(build_checkpoint(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))"
)

Starter = Callable[[str, str], Subject]  # (upstream base url, upstream model) -> subject


def build_tiny_checkpoint(size: str = "tiny") -> Path:
    """The Llama 3 checkpoint of ``size`` (``gateway.engines.tiny.SHAPES``)."""
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, FAMILY, str(CHECKPOINTS), size],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the tiny checkpoint failed:\n{done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def start_engine(checkpoint: Path, log_dir: Path) -> Server:
    """vLLM's OpenAI server on the load core, its CPU threads bound there too."""
    port = free_port()
    args = python_module(
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(checkpoint),
        "--served-model-name",
        SERVED_NAME,
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--enforce-eager",
        "--max-model-len",
        "512",
    )
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": LOAD_CORE}
    server = Server("vllm", pinned(LOAD_CORE, args), port, log_dir, env=env)
    server.wait_ready("/health", timeout=300)
    return server


def _interleaved(
    subjects: list[Subject], load: Load, body: dict[str, Any], label: str, cycles: int
) -> dict[str, dict[str, Any]]:
    """Each subject twice per cycle, in A-B-B-A order, averaged: the engine's own
    speed drifts on a shared machine, and this keeps the drift out of the ratios."""
    rounds: dict[str, list[dict[str, Any]]] = {s.name: [] for s in subjects}
    for subject in [*subjects, *reversed(subjects)] * cycles:
        print(f"  (f) {subject.name} {label} ...", flush=True)
        rounds[subject.name].append(send(subject, load, body))
    return {name: _mean_of(runs) for name, runs in rounds.items()}


def _mean_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(pick: Callable[[dict[str, Any]], float]) -> float:
        return round(statistics.fmean(pick(r) for r in runs), 3)

    merged: dict[str, Any] = {
        "rounds": runs,
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "error_samples": [s for r in runs for s in r["error_samples"]][:5],
        "tokens_per_second": mean(lambda r: r["tokens_per_second"]),
        "ttft_ms": {"p50": mean(lambda r: r["ttft_ms"]["p50"])},
        "cpu_busy": {
            core: round(statistics.fmean(r["cpu_busy"].get(core, 0.0) for r in runs), 1)
            for core in runs[0]["cpu_busy"]
        },
    }
    if "subject_cpu_percent" in runs[0]:
        merged["subject_cpu_percent"] = mean(lambda r: r["subject_cpu_percent"])
    return merged


def through_engine(log_dir: Path, sizes: Sizes, starters: dict[str, Starter]) -> WorkloadResult:
    """Tokens/s direct to the engine and through each starter's subject."""
    stream_load, plain_load = sizes.engine_stream, sizes.engine_plain
    result = WorkloadResult(
        "f",
        f"vLLM CPU engine, tiny {FAMILY}, concurrency {stream_load.concurrency}",
        {
            "stream": stream_load.describe(),
            "non_stream": plain_load.describe(),
            "max_tokens": sizes.engine_max_tokens,
            "order": f"A-B-B-A rounds, {sizes.engine_cycles} cycle(s), averaged",
        },
    )
    checkpoint = build_tiny_checkpoint()
    engine = start_engine(checkpoint, log_dir)
    try:
        subjects = [Subject("direct", engine.url + "/v1", SERVED_NAME)]
        subjects += [start(engine.url + "/v1", SERVED_NAME) for start in starters.values()]
        # ignore_eos: every request generates exactly max_tokens, so runs compare like for like.
        plain = {"messages": PROMPT, "max_tokens": sizes.engine_max_tokens, "ignore_eos": True}
        stream = {**plain, "stream": True, "stream_options": {"include_usage": True}}
        try:
            cycles = sizes.engine_cycles
            stream_runs = _interleaved(subjects, stream_load, stream, "streaming", cycles)
            plain_runs = _interleaved(subjects, plain_load, plain, "non-streaming", cycles)
        finally:
            for subject in subjects:
                if subject.server is not None:
                    subject.server.stop()
    finally:
        engine.stop()
    result.runs = {f"{name} (stream)": run for name, run in stream_runs.items()}
    result.runs.update({f"{name} (non-stream)": run for name, run in plain_runs.items()})
    result.metric(
        "completion tokens/s, streaming",
        "tok/s",
        "ratio",
        lambda r: r["tokens_per_second"],
        runs=stream_runs,
    )
    result.metric(
        "TTFT p50, streaming", "ms", "added", lambda r: r["ttft_ms"]["p50"], runs=stream_runs
    )
    result.metric(
        "completion tokens/s, non-streaming",
        "tok/s",
        "ratio",
        lambda r: r["tokens_per_second"],
        runs=plain_runs,
    )
    return result
