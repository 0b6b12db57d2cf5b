"""Load shapes and request bodies, full size and smoke size, and how one load
is sent to one subject."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tests.benchmarks.procs import GATEWAY_CORE, LOAD_CORE, run_driver
from tests.benchmarks.subjects import Subject
from tests.benchmarks.system import process_cpu_seconds

PROMPT = [{"role": "user", "content": "Say hello in one short sentence."}]
CHAT = {"messages": PROMPT, "max_tokens": 16}
STREAM = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
PACE_MS = 2
# The mock's own extra (passed through by the gateway): one event per write, PACE_MS apart.
PACED_STREAM = {**STREAM, "mock_pace_ms": PACE_MS}


@dataclass(frozen=True, slots=True)
class Load:
    concurrency: int
    requests: int | None = None  # count mode
    warmup: int = 0
    duration: float | None = None  # time mode
    warmup_seconds: float = 0.0
    checkpoints: tuple[int, ...] = ()
    count_tokens: bool = False
    driver_core: str = LOAD_CORE
    spread_start: float = 0.0  # seconds over which the driver's workers start

    def describe(self) -> dict[str, Any]:
        shape: dict[str, Any] = {"concurrency": self.concurrency, "driver_core": self.driver_core}
        if self.requests is not None:
            shape.update(requests=self.requests, warmup_requests=self.warmup)
        if self.duration is not None:
            shape.update(seconds=self.duration, warmup_seconds=self.warmup_seconds)
        return shape


@dataclass(frozen=True, slots=True)
class Sizes:
    """Every load of a run; ``smoke`` shrinks them to seconds."""

    latency: Load
    throughput: Load
    streaming: Load
    paced: Load
    soak: Load
    startup_repeats: int
    engine_stream: Load
    engine_plain: Load
    engine_max_tokens: int
    engine_cycles: int  # A-B-B-A cycles per subject pair
    paired: Load  # one round of a paired comparison ((k), (m): ``paired.py``)
    paired_rounds: int


def engine_load(concurrency: int, duration: float, warmup_seconds: float) -> Load:
    """(f): tokens counted, the driver beside the gateway (the engine has its
    core alone), and the workers' starts spread over a second."""
    return Load(
        concurrency,
        duration=duration,
        warmup_seconds=warmup_seconds,
        count_tokens=True,
        driver_core=GATEWAY_CORE,
        spread_start=1.0,
    )


FULL = Sizes(
    latency=Load(concurrency=1, requests=2000, warmup=200),
    throughput=Load(concurrency=64, duration=20.0, warmup_seconds=2.0),
    streaming=Load(concurrency=64, duration=10.0, warmup_seconds=2.0),
    paced=Load(concurrency=64, duration=10.0, warmup_seconds=2.0),
    soak=Load(concurrency=64, requests=100_000, checkpoints=(10_000, 50_000, 100_000)),
    startup_repeats=5,
    # Two A-B-B-A cycles, so four rounds and 40 measured seconds per subject:
    # one cycle left the engine's drift (about 2% per round) in the ratio.
    # Workers start spread over a second: 32 identical requests started together
    # stay in lockstep (one prefill step for all, then uniform decode steps), a
    # regime real traffic never sees, and one that any hop in between perturbs.
    engine_stream=engine_load(32, duration=10.0, warmup_seconds=3.0),
    engine_plain=engine_load(32, duration=10.0, warmup_seconds=3.0),
    engine_max_tokens=128,
    engine_cycles=2,
    paired=Load(concurrency=64, duration=5.0, warmup_seconds=1.0),
    paired_rounds=8,
)

SMOKE = Sizes(
    latency=Load(concurrency=1, requests=100, warmup=20),
    throughput=Load(concurrency=16, duration=1.0, warmup_seconds=0.3),
    streaming=Load(concurrency=16, duration=1.0, warmup_seconds=0.3),
    paced=Load(concurrency=16, duration=1.0, warmup_seconds=0.3),
    soak=Load(concurrency=16, requests=3000, checkpoints=(300, 1500, 3000)),
    startup_repeats=1,
    engine_stream=engine_load(8, duration=3.0, warmup_seconds=2.0),
    engine_plain=engine_load(8, duration=3.0, warmup_seconds=2.0),
    engine_max_tokens=32,
    engine_cycles=1,
    paired=Load(concurrency=16, duration=0.5, warmup_seconds=0.2),
    paired_rounds=2,
)


def send(
    subject: Subject,
    load: Load,
    body: dict[str, Any],
    on_checkpoint: Callable[[int], None] | None = None,
    path: str = "/chat/completions",
) -> dict[str, Any]:
    """Drive ``subject``'s ``path`` with ``load``; the driver's summary, checked for errors."""
    args = [
        "--url",
        subject.base_url + path,
        "--body",
        orjson.dumps({"model": subject.model, **body}).decode(),
        "--concurrency",
        str(load.concurrency),
    ]
    if load.requests is not None:
        args += ["--requests", str(load.requests), "--warmup", str(load.warmup)]
    if load.duration is not None:
        args += ["--duration", str(load.duration), "--warmup-seconds", str(load.warmup_seconds)]
    if load.checkpoints:
        args += ["--checkpoints", ",".join(str(c) for c in load.checkpoints)]
    if load.count_tokens:
        args.append("--count-tokens")
    if load.spread_start:
        args += ["--spread-start", str(load.spread_start)]
    for name, value in subject.headers.items():
        args += ["--header", f"{name}: {value}"]
    server = subject.server
    cpu_before = process_cpu_seconds(server.pid) if server else 0.0
    began = time.perf_counter()
    result = run_driver(args, load.driver_core, on_checkpoint)
    if server is not None:
        # The subject's own CPU, warm-up included: on a shared machine this stays
        # meaningful when other processes steal the core and requests/s drops.
        used = process_cpu_seconds(server.pid) - cpu_before
        result["subject_cpu_percent"] = round(100.0 * used / (time.perf_counter() - began), 1)
        completed = max(result["completed_total"], 1)
        result["subject_cpu_ms_per_request"] = round(1000.0 * used / completed, 4)
    if result["errors"]:
        print(
            f"  {subject.name}: {result['errors']} errors, e.g. {result['error_samples']}",
            flush=True,
        )
    return result
