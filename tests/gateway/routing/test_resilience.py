"""Fallback chains, circuit breaking, health checks, admission, and a load test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from openai import AsyncOpenAI

from tests.gateway.routing.test_router import USER, chat, seen, start
from tests.helpers import FakeUpstream, Gateway


@pytest.fixture(scope="module")
def fallback_gateway(
    tmp_path_factory: pytest.TempPathFactory, ups: dict[str, FakeUpstream]
) -> Iterator[Gateway]:
    models = {
        "primary": {
            "targets": [{"provider": "a", "model": "p"}],
            "fallbacks": ["second", "third"],
            "retries": {"attempts": 1},
        },
        "second": {"targets": [{"provider": "b", "model": "s"}], "retries": {"attempts": 1}},
        "third": {"targets": [{"provider": "c", "model": "t"}]},
        "small": {
            "targets": [{"provider": "a", "model": "small"}],
            "max_model_len": 64,
            "fallbacks": ["large"],
        },
        "large": {"targets": [{"provider": "b", "model": "large"}], "max_model_len": 100000},
        "strict": {
            "targets": [{"provider": "a", "model": "p2"}],
            "fallbacks": ["second"],
            "fallback_on": ["context_length"],
            "retries": {"attempts": 1},
        },
    }
    gateway = start(
        tmp_path_factory.mktemp("fallback-gw"),
        ups,
        models,
        routing={"breaker": {"failures": 1000, "error_ratio": None}, "health_check_interval": 0},
    )
    yield gateway
    gateway.stop()


def test_fallback_chain_in_order(fallback_gateway: Gateway, up: dict) -> None:
    up["a"].faults({"status": 500})
    up["b"].faults({"status": 503})
    response = chat(fallback_gateway, "primary")
    assert response.status_code == 200
    assert response.json()["model"] == "primary"  # the name the client asked for
    assert response.headers["x-gateway-target"] == "c/t"
    assert (seen(up["a"]), seen(up["b"]), seen(up["c"])) == (1, 1, 1)


def test_client_errors_do_not_fall_back(fallback_gateway: Gateway, up: dict) -> None:
    up["a"].faults({"status": 400})
    assert chat(fallback_gateway, "primary").status_code == 400
    assert seen(up["b"]) == 0 and seen(up["c"]) == 0


def test_fallback_only_for_configured_reasons(fallback_gateway: Gateway, up: dict) -> None:
    up["a"].faults({"status": 500})
    assert chat(fallback_gateway, "strict").status_code == 502
    assert seen(up["b"]) == 0


def test_content_filter_falls_back(fallback_gateway: Gateway, up: dict) -> None:
    up["a"].faults({"content_filter": True})
    response = chat(fallback_gateway, "primary")
    assert response.status_code == 200
    assert response.json()["choices"][0]["finish_reason"] == "stop"
    assert response.headers["x-gateway-target"] == "b/s"


def test_context_window_decided_before_sending(fallback_gateway: Gateway, up: dict) -> None:
    long_prompt = [{"role": "user", "content": "word " * 200}]
    response = chat(fallback_gateway, "small", body={"messages": long_prompt})
    assert response.status_code == 200
    assert response.headers["x-gateway-target"] == "b/large"
    assert seen(up["a"]) == 0  # the small model never saw a prompt it cannot hold
    short = chat(fallback_gateway, "small")
    assert short.headers["x-gateway-target"] == "a/small"


def test_context_length_error_from_upstream_falls_back(fallback_gateway: Gateway, up: dict) -> None:
    up["a"].faults(
        {
            "status": 400,
            "code": "context_length_exceeded",
            "message": "This model's maximum context length is 64 tokens.",
        }
    )
    response = chat(fallback_gateway, "strict")
    assert response.status_code == 200
    assert response.headers["x-gateway-target"] == "b/s"


def test_breaker_opens_then_probes_and_recovers(tmp_path: Path, up: dict) -> None:
    models = {"solo": {"targets": [{"provider": "a", "model": "m"}], "retries": {"attempts": 1}}}
    gateway = start(
        tmp_path,
        up,
        models,
        routing={
            "breaker": {"failures": 3, "error_ratio": None, "cooldown": 1},
            "health_check_interval": 0,
        },
    )
    try:
        up["a"].faults(*[{"status": 500}] * 3)
        assert [chat(gateway, "solo").status_code for _ in range(3)] == [502, 502, 502]
        # Open: the backend is not even asked.
        blocked = chat(gateway, "solo")
        assert blocked.status_code == 503 and "retry-after" in blocked.headers
        assert seen(up["a"]) == 3
        state = httpx.get(gateway.base_url + "/gateway/targets").json()["data"][0]
        assert state["state"] == "open" and state["failures"] == 3
        time.sleep(1.1)
        # Half-open: one probe goes through; it succeeds and closes the breaker.
        assert chat(gateway, "solo").status_code == 200
        assert seen(up["a"]) == 4
        state = httpx.get(gateway.base_url + "/gateway/targets").json()["data"][0]
        assert state["state"] == "closed"
    finally:
        gateway.stop()


def test_health_checks_skip_a_dead_backend_without_traffic(tmp_path: Path, up: dict) -> None:
    spare = FakeUpstream(tmp_path, "spare")
    models = {
        "pair": {
            "targets": [{"provider": "spare", "model": "m"}, {"provider": "a", "model": "m"}],
            "strategy": "round-robin",
        }
    }
    config = {
        "providers": {
            "spare": {"kind": "openai", "base_url": spare.base_url},
            "a": {"kind": "openai", "base_url": up["a"].base_url},
        },
        "models": models,
        "routing": {"health_check_interval": 0.2},
    }
    gateway = Gateway(tmp_path, config)
    try:
        spare.stop()
        time.sleep(0.8)
        state = {
            t["id"]: t for t in httpx.get(gateway.base_url + "/gateway/targets").json()["data"]
        }
        assert state["spare/m"]["healthy"] is False and state["a/m"]["healthy"] is True
        targets = {chat(gateway, "pair").headers["x-gateway-target"] for _ in range(6)}
        assert targets == {"a/m"}
        after = {
            t["id"]: t for t in httpx.get(gateway.base_url + "/gateway/targets").json()["data"]
        }
        assert after["spare/m"]["requests"] == 0 and after["a/m"]["requests"] == 6
        assert after["spare/m"]["health_check_error"] == f"upstream {spare.base_url} is unreachable"
    finally:
        gateway.stop()


def test_admission_queue_then_429(tmp_path: Path, up: dict) -> None:
    models = {"guarded": {"targets": [{"provider": "a", "model": "m", "max_concurrency": 1}]}}
    gateway = start(
        tmp_path,
        up,
        models,
        routing={"max_queue": 1, "queue_timeout": 3, "health_check_interval": 0},
    )
    slow = {"messages": [{"role": "user", "content": "[slow] a b c"}], "stream": True}
    try:
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(chat, gateway, "guarded", body=slow)]
            time.sleep(0.2)
            futures.append(pool.submit(chat, gateway, "guarded", body=slow))  # queued
            time.sleep(0.2)
            futures.append(pool.submit(chat, gateway, "guarded", body=slow))  # queue full
            statuses = [f.result().status_code for f in futures]
        assert statuses == [200, 200, 429]
        refused = futures[2].result()
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert seen(up["a"]) == 2
    finally:
        gateway.stop()


def test_load_with_a_flaky_and_a_dying_target(tmp_path: Path) -> None:
    """2,000 requests at concurrency 50 over three targets: one fails 30% of its
    requests, one is killed midway. Clients see no failure on non-streaming
    requests; a stream that breaks after it started ends with an error event."""
    servers = {name: FakeUpstream(tmp_path, name) for name in ("steady", "flaky", "doomed")}
    config = {
        "providers": {n: {"kind": "openai", "base_url": s.base_url} for n, s in servers.items()},
        "models": {
            "chat": {
                "targets": [{"provider": n, "model": "m"} for n in servers],
                "retries": {"attempts": 4},
            }
        },
        "routing": {"health_check_interval": 0.5},
    }
    gateway = Gateway(tmp_path, config)
    servers["flaky"].faults(fail_ratio=0.3)
    outcomes: dict[str, int] = {
        "ok": 0,
        "failed": 0,
        "stream_ok": 0,
        "stream_error_event": 0,
        "stream_bad": 0,
    }

    async def one(client: httpx.AsyncClient, index: int) -> None:
        body = {"model": "chat", "messages": USER}
        if index % 10 == 0:
            body["stream"] = True
            text = (await client.post("/chat/completions", json=body)).text
            if text.endswith("data: [DONE]\n\n") and '"error"' not in text:
                outcomes["stream_ok"] += 1
            elif '"error"' in text and text.endswith("data: [DONE]\n\n"):
                outcomes["stream_error_event"] += 1
            else:
                outcomes["stream_bad"] += 1
            return
        response = await client.post("/chat/completions", json=body)
        outcomes["ok" if response.status_code == 200 else "failed"] += 1

    async def drive() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(2000):
            queue.put_nowait(index)
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(
            base_url=gateway.base_url, limits=limits, timeout=30
        ) as client:

            async def worker() -> None:
                while not queue.empty():
                    index = queue.get_nowait()
                    if index == 1000:
                        servers["doomed"].stop()
                    await one(client, index)

            await asyncio.gather(*(worker() for _ in range(50)))

    try:
        asyncio.run(drive())
        attempts = {n: len(s.requests()) for n, s in servers.items() if n != "doomed"}
        print(f"\nload test: outcomes={outcomes} upstream attempts={attempts}")
        assert outcomes["failed"] == 0
        assert outcomes["ok"] == 1800
        assert outcomes["stream_bad"] == 0
        assert outcomes["stream_ok"] + outcomes["stream_error_event"] == 200
        assert attempts["flaky"] > 100  # the flaky target kept getting (and failing) traffic
    finally:
        gateway.stop()
        for server in servers.values():
            server.stop()


def test_sdk_never_sees_the_failover(tmp_path: Path, up: dict) -> None:
    models = {
        "chat": {"targets": [{"provider": "dead", "model": "m"}, {"provider": "a", "model": "m"}]}
    }
    gateway = start(tmp_path, up, models, routing={"health_check_interval": 0})

    async def run() -> list[str]:
        async with AsyncOpenAI(base_url=gateway.base_url, api_key="x", max_retries=0) as client:
            replies = await asyncio.gather(
                *(client.chat.completions.create(model="chat", messages=USER) for _ in range(20))
            )
        return [r.choices[0].message.content or "" for r in replies]

    try:
        assert asyncio.run(run()) == ["a: hello there world"] * 20
    finally:
        gateway.stop()


def test_rejected_credentials_mark_a_target_unhealthy(tmp_path: Path) -> None:
    locked = FakeUpstream(tmp_path, "locked", api_key="sk-right")
    config = {
        "providers": {
            "wrong": {"kind": "openai", "base_url": locked.base_url, "api_key": "sk-wrong"},
            "right": {"kind": "openai", "base_url": locked.base_url, "api_key": "sk-right"},
        },
        "models": {
            "m": {
                "targets": [
                    {"provider": "wrong", "model": "m"},
                    {"provider": "right", "model": "m"},
                ]
            }
        },
        "routing": {"health_check_interval": 0.2},
    }
    gateway = Gateway(tmp_path, config)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            state = {
                t["id"]: t for t in httpx.get(gateway.base_url + "/gateway/targets").json()["data"]
            }
            if state["wrong/m"]["healthy"] is False:
                break
            time.sleep(0.1)
        assert state["wrong/m"]["healthy"] is False
        assert state["wrong/m"]["health_check_error"] == "credentials rejected (HTTP 401)"
        assert state["right/m"]["healthy"] is True
        assert state["right/m"]["health_check_error"] is None
        # Requests go to the target whose key works.
        assert {chat(gateway, "m").headers["x-gateway-target"] for _ in range(4)} == {"right/m"}
    finally:
        gateway.stop()
        locked.stop()
