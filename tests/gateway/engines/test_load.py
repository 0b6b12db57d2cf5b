"""Engine replicas' own load, read from their /metrics (gateway.engines.load),
and how the router uses it: against real servers on loopback that answer
/metrics as vLLM does (tests/fakes/openai_server.py), wired the way
``serve --workers N`` wires a worker (replicas published by another process,
reached as providers)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import build_adapter
from gateway.config.fleet import EngineLoadConfig
from gateway.config.loader import parse_config
from gateway.engines.handle import EngineHandle, EngineState
from gateway.engines.load import LoadMonitor, parse_load
from gateway.engines.remote import engines_as_providers
from gateway.engines.runtime import LocalEngines
from gateway.engines.shared import SharedEngineState, write_state
from gateway.observability.logs import make_logger
from gateway.routing.build import build_router
from gateway.routing.call import Call
from gateway.routing.router import Router
from gateway.tokens import TokenCounter
from tests.helpers import FakeUpstream

VLLM_TEXT = b"""# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 4.0
vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="capacity"} 99.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.5
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 1234.0
"""


def test_the_three_gauges_are_read_from_vllm_text() -> None:
    # Summed over a server's engine cores; the fullest KV cache; other series ignored.
    assert parse_load(VLLM_TEXT) == (5.0, 4.0, 0.5)
    assert parse_load(b"<html>not metrics</html>") is None
    assert parse_load(b"") is None


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[FakeUpstream]]:
    """Two servers standing in for two replicas of one vLLM engine."""
    tmp = tmp_path_factory.mktemp("replicas")
    servers = [FakeUpstream(tmp, f"replica{i}") for i in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def fresh(replicas: list[FakeUpstream]) -> Iterator[list[FakeUpstream]]:
    for server in replicas:
        server.reset()
        server.set_load()
    yield replicas


def published(tmp_path: Path, servers: list[FakeUpstream]) -> tuple[Path, dict[str, str]]:
    """The state an engine process publishes for its workers: llama#0 and llama#1, ready."""
    config = parse_config("engines: {llama: {model: /m, replicas: 2}}", env={})
    handles = {}
    for index, server in enumerate(servers):
        name = f"llama#{index}"
        handle = EngineHandle(name, config.engines["llama"], server.port, tmp_path / name)
        handle.state = EngineState.READY
        handles[name] = handle
    path = tmp_path / "state.json"
    write_state(path, handles)
    return path, {name: h.base_url for name, h in handles.items()}


async def test_a_replica_that_stops_answering_does_not_hold_up_the_others(
    tmp_path: Path, fresh: list[FakeUpstream]
) -> None:
    path, _ = published(tmp_path, fresh)
    shared = SharedEngineState(path)
    monitor = LoadMonitor(lambda: shared.handles, EngineLoadConfig(interval=0.2, timeout=0.5))
    fresh[0].set_load(running=2, waiting=1, kv_cache_usage=0.1)
    fresh[1].set_load(running=7)
    reading = asyncio.create_task(monitor.run())
    try:
        await asyncio.sleep(0.5)
        now = time.monotonic()
        first, second = monitor.load("llama#0"), monitor.load("llama#1")
        assert (first.running, first.waiting, first.fresh(now)) == (2, 1, True)
        assert (second.running, second.fresh(now)) == (7, True)
        os.kill(fresh[0].proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
        try:
            await asyncio.sleep(1.0)
            fresh[1].set_load(running=3)
            rounds_before = second.read_at
            await asyncio.sleep(2.0)
            now = time.monotonic()
            # The stopped one's report aged out; the other was read round after round.
            assert not first.fresh(now)
            assert second.running == 3 and second.read_at != rounds_before
            assert second.read_at is not None and now - second.read_at < 1.0
        finally:
            os.kill(fresh[0].proc.pid, signal.SIGCONT)
        await asyncio.sleep(1.0)
        assert first.fresh(time.monotonic())  # answering again: reported again
    finally:
        reading.cancel()
        await monitor.aclose()


@asynccontextmanager
async def worker(tmp_path: Path, fresh: list[FakeUpstream]) -> AsyncIterator[Any]:
    """A worker's router over the two replicas, each model with its own strategy."""
    path, urls = published(tmp_path, fresh)
    text = """
engines: {llama: {model: /m, replicas: 2}}
routing: {health_check_interval: 0, engine_load: {max_waiting: 8}}
models:
  spread: {strategy: round-robin, targets: [{engine: llama}]}
  busy: {strategy: least-busy, targets: [{engine: llama}]}
"""
    config = engines_as_providers(parse_config(text, env={}), urls)
    engines = LocalEngines(config, make_logger(), shared=path)
    adapters = {name: build_adapter(config.provider(name)) for name in config.providers}
    router = build_router(config, adapters, 0, TokenCounter(), engines)
    try:
        yield router, engines.monitor
    finally:
        await engines.aclose()
        await asyncio.gather(*(adapter.aclose() for adapter in adapters.values()))


async def sent_to(router: Router, model: str, requests: int) -> Counter[str]:
    body = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
    counts: Counter[str] = Counter()
    for _ in range(requests):
        _, target = await router.call(router.resolve(model), Call("chat", dict(body)))
        counts[target.name] += 1
    return counts


async def test_targets_are_the_replicas(tmp_path: Path, fresh: list[FakeUpstream]) -> None:
    async with worker(tmp_path, fresh) as (router, _):
        assert [t.name for t in router.resolve("spread").targets] == [
            "engine/llama#0",
            "engine/llama#1",
        ]
        assert await sent_to(router, "spread", 4) == {"engine/llama#0": 2, "engine/llama#1": 2}


async def test_a_replica_whose_queue_is_full_gets_nothing_while_another_has_room(
    tmp_path: Path, fresh: list[FakeUpstream]
) -> None:
    async with worker(tmp_path, fresh) as (router, monitor):
        fresh[0].set_load(running=4, waiting=8)  # max_waiting
        await monitor.read_all()
        assert await sent_to(router, "spread", 6) == {"engine/llama#1": 6}
        fresh[1].set_load(kv_cache_usage=1.0)  # now both are full: both serve again
        await monitor.read_all()
        assert await sent_to(router, "spread", 4) == {"engine/llama#0": 2, "engine/llama#1": 2}
        fresh[0].set_load()
        fresh[1].set_load()
        await monitor.read_all()
        assert len(await sent_to(router, "spread", 4)) == 2


async def test_least_busy_counts_what_the_engine_reports_running(
    tmp_path: Path, fresh: list[FakeUpstream]
) -> None:
    async with worker(tmp_path, fresh) as (router, monitor):
        fresh[1].set_load(running=5)  # requests from elsewhere: this worker has none in flight
        await monitor.read_all()
        assert await sent_to(router, "busy", 5) == {"engine/llama#0": 5}
        fresh[1].set_load()
        fresh[0].set_load(running=3, waiting=1)
        await monitor.read_all()
        assert await sent_to(router, "busy", 5) == {"engine/llama#1": 5}
