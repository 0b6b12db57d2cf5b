"""Routing over a fleet of engine replicas, against vLLM's own router.

``python -m tests.benchmarks.fleet`` starts the gateway with two replicas of
a Llama 3 engine on the CPU, on a checkpoint the project builds (``small``,
about 9M parameters, unless ``--model-size tiny``; prefix caching on, one
replica's threads bound to each core), then sends the same workload
(``conversations``: concurrent users, each holding multi-turn conversations
over a long shared system prompt and a growing history, pausing
``--think-seconds`` between an answer and the next turn) through the gateway with
``round-robin``, ``least-busy``, ``session`` and ``prefix``, and through
``vllm-router --policy cache_aware`` in front of the same two replicas, in
that order, in one run. Figures per subject: TTFT p50/p99, completion
tokens/s, the engines' own prefix cache hit rate (the deltas of
``vllm:prefix_cache_hits_total`` / ``vllm:prefix_cache_queries_total`` over
the run, both replicas) and each replica's share of the requests; and the
mean TTFT split by the engines' own histograms (queue, prefill, the rest of the
engine's part, and what lies outside the engine). ``--strategies`` picks the
gateway's subjects.

vllm-router is installed into a venv of its own on first use (it is no
dependency of the project). ``--smoke`` runs every subject for seconds.
Results land in ``--out`` (bench-results/) as markdown and JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.benchmarks.conversations import words
from tests.benchmarks.driver import percentile
from tests.benchmarks.engine import SERVED_NAME, build_tiny_checkpoint
from tests.benchmarks.procs import Server, python_module
from tests.benchmarks.system import busy_percent, cpu_times, machine_info
from tests.helpers import free_port

ROUTER_VENV = Path.home() / ".cache" / "vllm-gateway-bench" / "vllm-router-venv"
STRATEGIES = ("round-robin", "least-busy", "session", "prefix")
ROUTER = "vllm-router"
SYSTEM_TOKENS = 1500
MAX_MODEL_LEN = 4096
# Each replica's KV cache, in tokens (blocks of 32): room for the conversations one
# replica holds when each stays on one replica, not for every conversation on both.
# Unbounded, the tiny model's 1 GiB would hold 2M tokens and never evict anything,
# which no GPU serving a fleet does; 0 leaves vLLM's own size.
KV_CACHE_TOKENS = 16_384
KV_BLOCK = 32  # the CPU attention backend takes multiples of 32
# Users read the answer before they ask again. Sent at once, the closed loop
# turns whatever a strategy saves into more requests (Little's law), and each
# request's TTFT stays one busy engine step, whatever the strategy; with long
# pauses the tokens/s follow the users' pace. 1 s shows both (README, runs at
# 0, 1 and 2 s).
THINK_SECONDS = 1.0
# The Llama 3 checkpoint built for it (``gateway.engines.tiny.SHAPES``): on
# "tiny" a prefill costs next to nothing, so there is little for a prefix
# cache hit to save; "small" prefills a few hundred tokens in a few decode
# steps' time, as a 1B model does on a GPU.
MODEL_SIZE = "small"
_COUNTER = re.compile(
    rb"^(vllm:[a-z_]+_(?:total|sum|count))(?:\{[^}\n]*\})? ([^\s]+)", re.MULTILINE
)
COUNTERS = (
    b"vllm:prefix_cache_hits_total",
    b"vllm:prefix_cache_queries_total",
    b"vllm:request_success_total",
    b"vllm:num_preemptions_total",  # a KV cache too small for what runs at once
)
# Where a request's time to first token goes, by the engines' own histograms: the
# API server's whole TTFT (arrival to first token), of it the scheduler's queue and
# the prefill; the rest of the client's TTFT is outside the engine (router, network).
PHASES = {
    "engine_ttft": b"vllm:time_to_first_token_seconds",
    "queue": b"vllm:request_queue_time_seconds",
    "prefill": b"vllm:request_prefill_time_seconds",
}
SCRAPED = COUNTERS + tuple(
    name + suffix for name in PHASES.values() for suffix in (b"_sum", b"_count")
)


@dataclass(frozen=True, slots=True)
class Shape:
    users: int
    turns: int
    seconds: float  # measured per round
    warmup_seconds: float
    max_tokens: int
    question_words: int
    cycles: int  # each subject runs twice per cycle
    kv_cache_tokens: int = KV_CACHE_TOKENS
    think_seconds: float = THINK_SECONDS  # a user's mean pause before its next turn
    model_size: str = MODEL_SIZE

    def describe(self) -> str:
        cache = f"{self.kv_cache_tokens:,} tokens" if self.kv_cache_tokens else "vLLM's default"
        pause = f"after {self.think_seconds:g} s on average" if self.think_seconds else "at once"
        return (
            f"the {self.model_size} Llama 3 checkpoint; "
            f"{self.users} users (each next turn sent {pause}), {self.turns} turns per "
            "conversation, questions of "
            f"{self.question_words} words, answers of {self.max_tokens} tokens; KV cache per "
            f"replica {cache}; per subject {2 * self.cycles} rounds of {self.seconds:g} s "
            f"measured after {self.warmup_seconds:g} s, in A-B-B-A order"
        )


FULL = Shape(
    users=16,
    turns=8,
    seconds=40,
    warmup_seconds=10,
    max_tokens=32,
    question_words=100,
    cycles=1,
)
SMOKE = Shape(
    users=4, turns=3, seconds=6, warmup_seconds=2, max_tokens=8, question_words=40, cycles=1
)


def gateway_config(checkpoint: Path, logs: Path, kv_cache_tokens: int) -> dict[str, Any]:
    extra = ["--distributed-executor-backend", "uni"]
    if kv_cache_tokens:
        blocks = kv_cache_tokens // KV_BLOCK
        extra += ["--block-size", str(KV_BLOCK), "--num-gpu-blocks-override", str(blocks)]
    engine = {
        "model": str(checkpoint),
        "served_name": SERVED_NAME,
        "family": "llama3",
        "replicas": 2,
        "max_model_len": MAX_MODEL_LEN,
        "enable_prefix_caching": True,
        "enforce_eager": True,
        "cpu_kvcache_space_gib": 1,
        # One replica per core: its engine core's threads bound there (its API
        # server process, like the gateway, the router and the driver, is not).
        "cpu_threads_bind": ["0", "1"],
        "extra_args": extra,
        "startup_timeout": 900,
    }
    models = {name: {"strategy": name, "targets": [{"engine": "llama"}]} for name in STRATEGIES}
    return {
        "server": {"access_log": str(logs / "access.log")},
        "engines": {"llama": engine},
        "models": models,
    }


def start_fleet(checkpoint: Path, logs: Path, kv_cache_tokens: int) -> tuple[Server, list[str]]:
    """The gateway and its two replicas; their base URLs once both are ready."""
    config = gateway_config(checkpoint, logs, kv_cache_tokens)
    config_path = logs / "fleet.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    args = python_module("gateway", "serve", "--config", str(config_path), "--port", str(port))
    env = {"VLLM_GATEWAY_ENGINE_LOG_DIR": str(logs / "engines")}
    gateway = Server("gateway", args, port, logs, env=env)
    gateway.wait_ready("/health", timeout=60)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        engines = ready(gateway.url)
        states = {name: engine["state"] for name, engine in engines.items()}
        if set(states.values()) == {"ready"}:
            return gateway, [engines[name]["url"].removesuffix("/v1") for name in sorted(engines)]
        if "failed" in states.values():
            break
        time.sleep(1)
    gateway.stop()
    raise RuntimeError(f"the replicas did not start: {states}\n{gateway.log_tail()}")


def ready(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url + "/ready", timeout=10) as response:
            payload = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503 while no model can be served
        payload = orjson.loads(exc.read())
    return dict(payload.get("engines", {}))


def post(url: str, body: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return dict(orjson.loads(response.read()))


def system_prompt(replica: str) -> str:
    """About ``SYSTEM_TOKENS`` tokens of license text, counted by the engine's own tokenizer."""
    vocabulary = words()
    count = 1200
    for _ in range(4):
        text = " ".join(vocabulary[:count])
        tokens = post(replica + "/tokenize", {"model": SERVED_NAME, "prompt": text})["count"]
        if abs(tokens - SYSTEM_TOKENS) <= 25:
            break
        count = max(50, round(count * SYSTEM_TOKENS / tokens))
    return text


def warm(replicas: list[str], system: str) -> None:
    """Both replicas hold the shared system prompt before any subject runs."""
    for replica in replicas:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": "Hi"}]
        body = {"model": SERVED_NAME, "messages": messages, "max_tokens": 1}
        post(replica + "/v1/chat/completions", body)


def counters(replicas: list[str]) -> list[dict[bytes, float]]:
    """Each replica's prefix cache and finished-request counters."""
    found = []
    for replica in replicas:
        with urllib.request.urlopen(replica + "/metrics", timeout=10) as response:
            text = response.read()
        sums: dict[bytes, float] = dict.fromkeys(SCRAPED, 0.0)
        for match in _COUNTER.finditer(text):
            if match.group(1) in sums:
                sums[match.group(1)] += float(match.group(2))
        found.append(sums)
    return found


def ensure_router(log: Path) -> Path:
    """vllm-router in a venv of its own (created once, then reused)."""
    executable = ROUTER_VENV / "bin" / "vllm-router"
    if executable.exists():
        return executable
    print(f"installing vllm-router into {ROUTER_VENV} (once)", flush=True)
    with open(log, "wb") as out:
        subprocess.run([sys.executable, "-m", "venv", str(ROUTER_VENV)], check=True)
        subprocess.run(
            [str(ROUTER_VENV / "bin" / "pip"), "install", "vllm-router"],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return executable


def start_router(replicas: list[str], logs: Path) -> Server:
    executable = ensure_router(logs / "vllm-router-install.log")
    port = free_port()
    args = [
        str(executable),
        *("--worker-urls", *replicas),
        *("--policy", "cache_aware"),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--log-level", "warning"),
    ]
    server = Server(ROUTER, args, port, logs)
    server.wait_ready("/v1/models", timeout=120)
    return server


def drive(url: str, model: str, tag: str, system_file: Path, shape: Shape) -> dict[str, Any]:
    args = python_module(
        "tests.benchmarks.conversations",
        *("--url", url + "/v1/chat/completions", "--model", model),
        *("--system-file", str(system_file), "--tag", tag),
        *("--users", str(shape.users), "--turns", str(shape.turns)),
        *("--seconds", str(shape.seconds), "--warmup-seconds", str(shape.warmup_seconds)),
        *("--max-tokens", str(shape.max_tokens), "--question-words", str(shape.question_words)),
        *("--think-seconds", str(shape.think_seconds)),
    )
    done = subprocess.run(args, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the driver failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
    return dict(orjson.loads(done.stdout.splitlines()[-1])["result"])


def measure(
    name: str, url: str, model: str, replicas: list[str], system_file: Path, shape: Shape, tag: str
) -> dict[str, Any]:
    """One round of one subject: the driver's figures and the replicas' counter deltas."""
    print(f"  {name} ...", flush=True)
    before, cpu_before = counters(replicas), cpu_times()
    result = drive(url, model, tag, system_file, shape)
    after, cpu_after = counters(replicas), cpu_times()
    result["counters"] = [
        {key.decode(): a[key] - b[key] for key in SCRAPED}
        for a, b in zip(after, before, strict=True)
    ]
    result["cpu_busy"] = busy_percent(cpu_before, cpu_after)
    if result["errors"]:
        print(f"    {result['errors']} errors, e.g. {result['error_samples']}", flush=True)
    return result


def merged(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """A subject's rounds as one run: every TTFT sample, every token, every counter."""
    ttfts = sorted(t for r in rounds for t in r["ttfts_ms"])
    seconds = sum(r["seconds"] for r in rounds)
    tokens = sum(r["completion_tokens"] for r in rounds)

    def total(key: str, replica: int | None = None) -> float:
        picked = range(len(rounds[0]["counters"])) if replica is None else [replica]
        return sum(r["counters"][i][key] for r in rounds for i in picked)

    hits, queries = total(COUNTERS[0].decode()), total(COUNTERS[1].decode())
    served = [total(COUNTERS[2].decode(), i) for i in range(len(rounds[0]["counters"]))]
    return {
        "requests": sum(r["requests"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "error_samples": [e for r in rounds for e in r["error_samples"]][:5],
        "ttft_ms": {
            "p50": percentile(ttfts, 0.50),
            "p90": percentile(ttfts, 0.90),
            "p99": percentile(ttfts, 0.99),
        },
        "tokens_per_second": round(tokens / seconds, 1),
        "prefix_cache_hit_rate": round(hits / queries, 4) if queries else None,
        "replica_share": [round(s / sum(served), 3) if sum(served) else 0.0 for s in served],
        "preemptions": total(COUNTERS[3].decode()),
        "client_ttft_mean_ms": round(sum(ttfts) / len(ttfts), 1) if ttfts else None,
        "engine_means_ms": {
            phase: round(1000 * total(f"{name.decode()}_sum") / count, 1)
            if (count := total(f"{name.decode()}_count"))
            else None
            for phase, name in PHASES.items()
        },
        "rounds": [{k: v for k, v in r.items() if k != "ttfts_ms"} for r in rounds],
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    columns = (
        "Subject",
        "TTFT p50 (ms)",
        "TTFT p99 (ms)",
        "completion tokens/s",
        "prefix cache hit rate",
        "requests",
        "replica share",
        "errors",
    )
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, run in results.items():
        label = "vllm-router, cache_aware" if name == ROUTER else f"gateway, {name}"
        rate = run["prefix_cache_hit_rate"]
        share = " / ".join(f"{100 * s:.0f}%" for s in run["replica_share"])
        lines.append(
            f"| {label} | {run['ttft_ms']['p50']:,.0f} | {run['ttft_ms']['p99']:,.0f} | "
            f"{run['tokens_per_second']:,.0f} | {'—' if rate is None else f'{100 * rate:.1f}%'} | "
            f"{run['requests']:,} | {share} | {run['errors']} |"
        )
    return "\n".join(lines)


def phases(results: dict[str, dict[str, Any]]) -> str:
    """Where the mean TTFT goes: inside the engines (queue, prefill, the rest) and outside."""
    columns = ("Subject", "client", "engine", "queue", "prefill", "outside the engine")
    lines = [
        "Mean TTFT (ms), split by the engines' own histograms:",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f}"

    for name, run in results.items():
        means, client = run["engine_means_ms"], run["client_ttft_mean_ms"]
        engine = means["engine_ttft"]
        outside = None if client is None or engine is None else client - engine
        cells = (name, ms(client), ms(engine), ms(means["queue"]), ms(means["prefill"]))
        lines.append("| " + " | ".join((*cells, ms(outside))) + " |")
    return "\n".join(lines)


def goals(results: dict[str, dict[str, Any]]) -> list[str]:
    """The issue's goals for ``prefix``, each with its measured ratio."""
    prefix, rr = results.get("prefix"), results.get("round-robin")
    if prefix is None or rr is None:
        return []
    ttft = prefix["ttft_ms"]["p50"] / rr["ttft_ms"]["p50"]
    rate = prefix["tokens_per_second"] / rr["tokens_per_second"]
    lines = [
        f"- prefix TTFT p50 / round-robin's: {ttft:.2f} (goal: at most 0.60)",
        f"- prefix tokens/s / round-robin's: {rate:.2f} (goal: at least 1.15)",
    ]
    router = results.get(ROUTER)
    if router is not None:
        lines.append(
            f"- prefix vs vllm-router: TTFT p50 {prefix['ttft_ms']['p50']:,.0f} vs "
            f"{router['ttft_ms']['p50']:,.0f} ms, tokens/s {prefix['tokens_per_second']:,.0f} vs "
            f"{router['tokens_per_second']:,.0f} (goal: at least as good on both)"
        )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.fleet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="seconds per subject")
    parser.add_argument("--without-vllm-router", action="store_true")
    parser.add_argument(
        "--kv-cache-tokens",
        type=int,
        default=KV_CACHE_TOKENS,
        help="each replica's KV cache in tokens (0: vLLM's default, 2M for the tiny model)",
    )
    parser.add_argument("--cycles", type=int, help="A-B-B-A cycles per subject")
    parser.add_argument(
        "--think-seconds",
        type=float,
        default=THINK_SECONDS,
        help="each user's mean pause between an answer and its next turn (0: at once)",
    )
    parser.add_argument(
        "--model-size", choices=("tiny", "small"), default=MODEL_SIZE, help="the checkpoint"
    )
    parser.add_argument(
        "--strategies",
        default=",".join(STRATEGIES),
        help="the gateway's strategies to run, comma-separated (default: all)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    return parser.parse_args(argv)


Results = dict[str, dict[str, Any]]


def run(
    shape: Shape, strategies: list[str], with_router: bool, logs: Path
) -> tuple[Results, dict[str, Any]]:
    """Every subject ``shape.cycles`` times in A-B-C-C-B-A order: the engines'
    speed drifts on a shared machine, and this spreads the drift over all."""
    checkpoint = build_tiny_checkpoint(shape.model_size)
    gateway, replicas = start_fleet(checkpoint, logs, shape.kv_cache_tokens)
    router: Server | None = None
    try:
        system = system_prompt(replicas[0])
        system_file = logs / "system.txt"
        system_file.write_text(system)
        facts = {"system_prompt_words": len(system.split()), "replicas": replicas}
        warm(replicas, system)
        subjects = {name: (gateway.url, name) for name in strategies}
        if with_router:
            router = start_router(replicas, logs)
            subjects[ROUTER] = (router.url, SERVED_NAME)
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in subjects}
        order = [*subjects, *reversed(subjects)] * shape.cycles
        for index, name in enumerate(order):
            url, model = subjects[name]
            # Each round's conversations are its own: no round finds another's history cached.
            tag = f"{name}-{index}"
            rounds[name].append(measure(name, url, model, replicas, system_file, shape, tag))
        return {name: merged(runs) for name, runs in rounds.items()}, facts
    finally:
        if router is not None:
            router.stop()
        gateway.stop(timeout=60)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    strategies = args.strategies.split(",")
    if unknown := set(strategies) - set(STRATEGIES):
        raise SystemExit(f"unknown strategies: {sorted(unknown)}; known: {STRATEGIES}")
    shape = replace(
        SMOKE if args.smoke else FULL,
        kv_cache_tokens=args.kv_cache_tokens,
        think_seconds=args.think_seconds,
        model_size=args.model_size,
    )
    if args.cycles:
        shape = replace(shape, cycles=args.cycles)
    started = datetime.now(UTC)
    meta: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": shlex.join(["python", "-m", "tests.benchmarks.fleet", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "workload": shape.describe(),
        "layout": (
            "replica 0's engine core on core 0, replica 1's on core 1; their API servers, "
            "the gateway, vllm-router and the driver unpinned"
        ),
    }
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vllm-gateway-fleet-") as tmp:
        results, facts = run(shape, strategies, not args.without_vllm_router, Path(tmp))
    meta.update(facts, seconds=round(time.perf_counter() - began, 1))
    meta["load_average_at_end"] = machine_info()["load_average_at_start"]
    text = "\n".join(
        [
            f"Fleet routing, {meta['started']}: {shape.describe()}.",
            f"Layout: {meta['layout']}.",
            "",
            table(results),
            "",
            phases(results),
            "",
            *goals(results),
            "",
        ]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    table_path = args.out / f"fleet-{stamp}.md"
    json_path = args.out / f"fleet-{stamp}.json"
    table_path.write_text(text)
    json_path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print()
    print(text)
    print(f"wrote {table_path} and {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
