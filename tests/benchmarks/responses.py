"""Workloads (i) and (j): what the Responses API costs on top of chat completions.

(i) ``POST /v1/responses`` non-streaming, concurrency 1, next to
    ``/v1/chat/completions`` through the same gateway to the same mock: the
    translation (request to chat body, chat completion to Response) and the
    default ``store: true`` in the memory backend.
(j) a 20-turn conversation rebuilt from Redis: the same request with and
    without ``previous_response_id`` naming the 20th response of a chain kept
    in Redis (``store: false``, so every request rebuilds the same history).
    Direct sends the mock the same chat bodies (1 message, and the 41 the
    rebuild makes), so the upstream's share of the bigger body is visible.

Each pair runs A-B-B-A (twice in a full run) and the gateway's figures are
means over its runs: on a shared machine the load drifts from run to run, and
the order puts that drift on both sides alike.
"""

from __future__ import annotations

import statistics
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from tests.benchmarks.loads import CHAT, PROMPT, Sizes, send
from tests.benchmarks.mock_upstream import MODEL as MOCK_MODEL
from tests.benchmarks.procs import LOAD_CORE
from tests.benchmarks.subjects import Subject, start_gateway
from tests.benchmarks.workloads import Metric, WorkloadResult
from tests.helpers import RedisServer

QUESTION = PROMPT[0]["content"]
RESPONSES = {"input": QUESTION, "max_output_tokens": 16}
TURNS = 20
MOCK_ANSWER = "Hello! " * 8  # what the mock answers every chat completion


def _p50(run: dict[str, Any]) -> float:
    return float(run["latency_ms"]["p50"])


def _p99(run: dict[str, Any]) -> float:
    return float(run["latency_ms"]["p99"])


def _cpu(run: dict[str, Any]) -> float:
    """The gateway's own CPU per request: steadier than latency on a busy machine."""
    return float(run["subject_cpu_ms_per_request"])


def _mean(runs: list[dict[str, Any]], pick: Callable[[dict[str, Any]], float]) -> float:
    return round(statistics.mean(pick(run) for run in runs), 3)


def alternate(
    result: WorkloadResult,
    a: tuple[str, Callable[[], dict[str, Any]]],
    b: tuple[str, Callable[[], dict[str, Any]]],
    cycles: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Runs of A and B in A-B-B-A order, ``cycles`` times: on a shared machine
    the load drifts from run to run, and this puts its drift on both alike."""
    runs: dict[str, list[dict[str, Any]]] = {a[0]: [], b[0]: []}
    for _ in range(cycles):
        for name, run in (a, b, b, a):
            print(f"  ({result.id}) {name} ...", flush=True)
            runs[name].append(run())
            result.runs[f"{name} #{len(runs[name])}"] = runs[name][-1]
    return runs[a[0]], runs[b[0]]


def responses_overhead(subjects: list[Subject], sizes: Sizes) -> WorkloadResult:
    load = sizes.latency
    title = "/v1/responses next to /v1/chat/completions, non-streaming, concurrency 1"
    result = WorkloadResult("i", title, load.describe())
    direct = next(s for s in subjects if s.name == "direct")
    gateway = next(s for s in subjects if s.name == "gateway")
    print("  (i) direct ...", flush=True)
    plain = result.runs["direct"] = send(direct, load, CHAT)
    chat, responses = alternate(
        result,
        ("gateway /v1/chat/completions", lambda: send(gateway, load, CHAT)),
        ("gateway /v1/responses", lambda: send(gateway, load, RESPONSES, path="/responses")),
        sizes.engine_cycles,
    )
    for name, pick in (("latency p50", _p50), ("latency p99", _p99)):
        for endpoint, runs in (("/v1/chat/completions", chat), ("/v1/responses", responses)):
            values = {"direct": pick(plain), "gateway": _mean(runs, pick)}
            result.metrics.append(Metric(f"{name}, {endpoint}", "ms", "added", values))
    added = round(_mean(responses, _p50) - _mean(chat, _p50), 3)
    result.metrics += [
        Metric(
            "/v1/responses minus /v1/chat/completions, p50", "ms", "absolute", {"gateway": added}
        ),
        Metric(
            "CPU per request, /v1/chat/completions",
            "ms",
            "absolute",
            {"gateway": _mean(chat, _cpu)},
        ),
        Metric(
            "CPU per request, /v1/responses", "ms", "absolute", {"gateway": _mean(responses, _cpu)}
        ),
    ]
    result.notes.append(
        f"gateway figures: means of {len(chat)} A-B-B-A runs of {load.requests} requests each"
    )
    return result


def _post(subject: Subject, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        subject.base_url + path,
        data=orjson.dumps({"model": subject.model, **body}),
        headers={"Content-Type": "application/json", **subject.headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(orjson.loads(answer.read()))


def _chain(gateway: Subject, turns: int) -> str:
    """A conversation of ``turns`` stored responses; the id of the last."""
    previous = None
    for turn in range(turns):
        body: dict[str, Any] = {"input": f"question {turn}", "max_output_tokens": 16}
        if previous is not None:
            body["previous_response_id"] = previous
        previous = _post(gateway, "/responses", body)["id"]
    assert previous is not None
    return str(previous)


def _history_chat() -> dict[str, Any]:
    """The chat body the rebuild sends: 20 turns, then the question."""
    messages: list[dict[str, Any]] = []
    for turn in range(TURNS):
        messages.append({"role": "user", "content": f"question {turn}"})
        messages.append({"role": "assistant", "content": MOCK_ANSWER})
    messages.append({"role": "user", "content": QUESTION})
    return {"messages": messages, "max_tokens": 16}


def rebuild_from_redis(direct: Subject, sizes: Sizes, logs: Path) -> WorkloadResult:
    load = sizes.latency
    title = f"{TURNS}-turn conversation rebuilt from Redis, non-streaming, concurrency 1"
    result = WorkloadResult("j", title, load.describe())
    redis = RedisServer(logs)
    # Redis shares the mock's and the driver's core; the gateway keeps its own.
    subprocess.run(
        ["taskset", "-pc", LOAD_CORE, str(redis.proc.pid)], check=True, capture_output=True
    )
    upstream = direct.base_url
    gateway = start_gateway(logs, upstream, MOCK_MODEL, name="gateway-redis", redis_url=redis.url)
    gateway.name = "gateway"
    try:
        last = _chain(gateway, TURNS)
        stateless = {**RESPONSES, "store": False}
        rebuilt = {**stateless, "previous_response_id": last}
        print("  (j) direct, 1 and 41 messages ...", flush=True)
        result.runs["direct"] = send(direct, load, CHAT)
        result.runs["direct, 41 messages"] = send(direct, load, _history_chat())
        bare, history = alternate(
            result,
            ("gateway, no history", lambda: send(gateway, load, stateless, path="/responses")),
            ("gateway, history", lambda: send(gateway, load, rebuilt, path="/responses")),
            sizes.engine_cycles,
        )
    finally:
        assert gateway.server is not None
        gateway.server.stop()
        redis.stop()
    runs = result.runs
    turns = f"{TURNS}-turn history from Redis"
    result.metrics += [
        Metric(
            "latency p50, no history",
            "ms",
            "added",
            {"direct": _p50(runs["direct"]), "gateway": _mean(bare, _p50)},
        ),
        Metric(
            f"latency p50, {turns}",
            "ms",
            "added",
            {"direct": _p50(runs["direct, 41 messages"]), "gateway": _mean(history, _p50)},
        ),
        Metric(
            f"latency p99, {turns}",
            "ms",
            "added",
            {"direct": _p99(runs["direct, 41 messages"]), "gateway": _mean(history, _p99)},
        ),
        Metric(
            "added by the rebuild, p50",
            "ms",
            "absolute",
            {"gateway": round(_mean(history, _p50) - _mean(bare, _p50), 3)},
        ),
        Metric("CPU per request, no history", "ms", "absolute", {"gateway": _mean(bare, _cpu)}),
        Metric(f"CPU per request, {turns}", "ms", "absolute", {"gateway": _mean(history, _cpu)}),
    ]
    result.notes.append(
        f"gateway figures: means of {len(bare)} A-B-B-A runs of {load.requests} requests each"
    )
    return result
