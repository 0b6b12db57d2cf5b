"""Routing and resilience against real misbehaving upstreams on loopback."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import FakeUpstream, Gateway, free_port

USER = [{"role": "user", "content": "hello there world"}]
NO_BREAKER = {"failures": 1000, "error_ratio": None}


def providers(ups: dict[str, FakeUpstream], timeouts: dict | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        name: {"kind": "openai", "base_url": server.base_url} for name, server in ups.items()
    }
    for provider in result.values():
        if timeouts:
            provider["timeouts"] = timeouts
    result["dead"] = {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1"}
    return result


def start(tmp_path: Path, ups: dict[str, FakeUpstream], models: dict, **extra: Any) -> Gateway:
    config = {
        "providers": providers(ups, extra.pop("timeouts", None)),
        "models": models,
        **extra,
    }
    return Gateway(tmp_path, config)


def chat(gateway: Gateway, model: str, **kwargs: Any) -> httpx.Response:
    body = {"model": model, "messages": USER, **kwargs.pop("body", {})}
    return httpx.post(gateway.base_url + "/chat/completions", json=body, timeout=30, **kwargs)


def seen(server: FakeUpstream) -> int:
    return len(server.requests())


@pytest.fixture(scope="module")
def retry_gateway(
    tmp_path_factory: pytest.TempPathFactory, ups: dict[str, FakeUpstream]
) -> Iterator[Gateway]:
    models = {
        "single": {"targets": [{"provider": "a", "model": "m"}]},
        "two": {
            "targets": [{"provider": "a", "model": "m"}, {"provider": "b", "model": "m"}],
            "strategy": "round-robin",
        },
        "limited": {"targets": [{"provider": "a", "model": "m"}], "retries": {"attempts": 2}},
        "deadline": {
            "targets": [{"provider": "a", "model": "m"}],
            "retries": {"attempts": 5, "deadline": 1.5},
        },
        # Long transport timeouts, a short deadline: the deadline must end the attempt.
        # A target of its own (a/bounded): the rest a 429 gives it leaves a/m alone.
        "bounded": {
            "targets": [{"provider": "a", "model": "bounded"}],
            "timeouts": {"first_token": 30, "total": 30},
            "retries": {"attempts": 3, "deadline": 0.8},
        },
        # Targets of their own (a/lat, b/lat): no other test's timings in their averages.
        "fastest": {
            "targets": [{"provider": "a", "model": "lat"}, {"provider": "b", "model": "lat"}],
            "strategy": "latency",
        },
        "ondead": {
            "targets": [{"provider": "dead", "model": "m"}, {"provider": "a", "model": "m"}],
            "strategy": "round-robin",
        },
    }
    gateway = start(
        tmp_path_factory.mktemp("retry-gw"),
        ups,
        models,
        timeouts={"connect": 1, "first_token": 1, "idle": 1, "total": 1},
        routing={"breaker": NO_BREAKER, "health_check_interval": 0},
    )
    yield gateway
    gateway.stop()


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(
    retry_gateway: Gateway, up: dict[str, FakeUpstream], status: int
) -> None:
    up["a"].faults({"status": status})
    response = chat(retry_gateway, "single")
    assert response.status_code == 200, response.text
    assert seen(up["a"]) == 2


def test_a_request_that_finds_every_target_resting_waits_for_one(
    retry_gateway: Gateway, up: dict[str, FakeUpstream]
) -> None:
    up["a"].faults({"status": 429})  # the target rests 1 s (no Retry-After)
    # Two attempts: the 429, then no target usable; the client hears the backend's 429.
    assert chat(retry_gateway, "limited").status_code == 429
    started = time.monotonic()
    response = chat(retry_gateway, "single")  # its first attempt finds no target usable
    assert response.status_code == 200
    assert 0.5 < time.monotonic() - started < 3
    assert seen(up["a"]) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(
    retry_gateway: Gateway, up: dict[str, FakeUpstream], status: int
) -> None:
    up["a"].faults({"status": status})
    assert chat(retry_gateway, "single").status_code == status
    assert seen(up["a"]) == 1


def test_timeout_before_first_byte_is_retried(retry_gateway: Gateway, up: dict) -> None:
    up["a"].faults({"hang": 5})
    response = chat(retry_gateway, "single")
    assert response.status_code == 200
    assert seen(up["a"]) == 2


def test_connect_error_moves_to_another_target(retry_gateway: Gateway, up: dict) -> None:
    for _ in range(4):
        response = chat(retry_gateway, "ondead")
        assert response.status_code == 200
        assert response.headers["x-gateway-target"] == "a/m"
    assert seen(up["a"]) == 4


def test_retry_goes_to_the_other_target_at_once(retry_gateway: Gateway, up: dict) -> None:
    up["a"].faults({"status": 503, "retry_after": 5})
    started = time.monotonic()
    # Round-robin: one of the two requests starts on a, fails, and moves to b.
    assert chat(retry_gateway, "two").status_code == 200
    assert chat(retry_gateway, "two").status_code == 200
    assert time.monotonic() - started < 2  # nobody waited out a's Retry-After
    assert seen(up["a"]) + seen(up["b"]) == 3  # two requests, one retry


def test_retry_after_is_honoured_on_a_single_target(retry_gateway: Gateway, up: dict) -> None:
    up["a"].faults({"status": 429, "retry_after": 1})
    started = time.monotonic()
    response = chat(retry_gateway, "single")
    assert response.status_code == 200
    assert time.monotonic() - started >= 1.0
    first, second = up["a"].requests()
    assert second["t"] - first["t"] >= 1.0


def test_attempt_limit(retry_gateway: Gateway, up: dict) -> None:
    up["a"].faults({"status": 500}, {"status": 500}, {"status": 500})
    assert chat(retry_gateway, "limited").status_code == 502
    assert seen(up["a"]) == 2


def test_deadline_stops_new_attempts(retry_gateway: Gateway, up: dict) -> None:
    up["a"].faults(*[{"hang": 5}] * 5)
    started = time.monotonic()
    response = chat(retry_gateway, "deadline")
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    # The first attempt gives up after 1 s (total), the second at the deadline (1.5 s).
    assert seen(up["a"]) == 2
    assert 1.4 < elapsed < 2.2


@pytest.mark.parametrize("stream", [False, True])
def test_the_deadline_ends_the_first_attempt_too(
    retry_gateway: Gateway, up: dict, stream: bool
) -> None:
    up["a"].faults({"hang": 5})
    started = time.monotonic()
    response = chat(retry_gateway, "bounded", body={"stream": stream})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "timeout"
    assert 0.7 < elapsed < 1.5
    assert seen(up["a"]) == 1


def test_a_pause_that_would_end_past_the_deadline_is_not_taken(
    retry_gateway: Gateway, up: dict
) -> None:
    up["a"].faults({"status": 429, "retry_after": 2})
    started = time.monotonic()
    response = chat(retry_gateway, "bounded")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert time.monotonic() - started < 0.7
    assert seen(up["a"]) == 1


def test_latency_sends_streams_to_the_target_first_to_answer(
    retry_gateway: Gateway, up: dict
) -> None:
    up["b"].faults(*[{"delay": 0.25}] * 30)  # b takes 0.25 s to its first chunk
    served = {"a": 0, "b": 0}
    for _ in range(12):
        response = chat(retry_gateway, "fastest", body={"stream": True})
        assert response.status_code == 200 and response.text.endswith("data: [DONE]\n\n")
        served[response.headers["X-Gateway-Target"].split("/")[0]] += 1
    # Each target is measured once; from then on the fast one takes the streams.
    assert served["b"] <= 2 and served["a"] >= 10
    states = {
        t["id"]: t for t in httpx.get(retry_gateway.base_url + "/gateway/targets").json()["data"]
    }
    assert states["b/lat"]["ewma_ttft_ms"] > 200 > states["a/lat"]["ewma_ttft_ms"]


def test_stream_retried_before_first_byte(retry_gateway: Gateway, up: dict) -> None:
    up["a"].faults({"status": 500})
    response = chat(retry_gateway, "single", body={"stream": True})
    assert response.status_code == 200
    assert response.text.endswith("data: [DONE]\n\n") and '"error"' not in response.text
    assert seen(up["a"]) == 2


def test_stream_never_resent_after_first_byte(retry_gateway: Gateway, up: dict) -> None:
    up["a"].faults({"drop_mid_stream": True})
    words = {"messages": [{"role": "user", "content": "one two three four"}], "stream": True}
    response = chat(retry_gateway, "single", body=words)
    assert response.status_code == 200
    assert '"error"' in response.text and response.text.endswith("data: [DONE]\n\n")
    assert seen(up["a"]) == 1


@pytest.fixture(scope="module")
def balance_gateway(
    tmp_path_factory: pytest.TempPathFactory, ups: dict[str, FakeUpstream]
) -> Iterator[Gateway]:
    pair = [
        {"provider": "a", "model": "m", "weight": 3},
        {"provider": "b", "model": "m", "weight": 1},
    ]
    models = {
        "weighted": {"targets": pair},
        "rr": {"targets": pair, "strategy": "round-robin"},
        "busy": {
            "targets": [{"provider": "a", "model": "m"}, {"provider": "b", "model": "m"}],
            "strategy": "least-busy",
        },
        "sticky": {
            "targets": [
                {"provider": "a", "model": "m"},
                {"provider": "b", "model": "m"},
                {"provider": "c", "model": "m"},
            ],
            "strategy": "session",
        },
        # Its own upstream model name: its targets' health is not shared with the others.
        "tiered": {
            "targets": [{"provider": "a", "model": "t"}, {"provider": "b", "model": "t", "tier": 2}]
        },
    }
    gateway = start(
        tmp_path_factory.mktemp("balance-gw"),
        ups,
        models,
        routing={
            "breaker": {"failures": 2, "error_ratio": None, "cooldown": 60},
            "health_check_interval": 0,
        },
    )
    yield gateway
    gateway.stop()


def _targets(gateway: Gateway, model: str, n: int) -> Counter[str]:
    body = {"model": model, "messages": USER}
    with (
        httpx.Client(base_url=gateway.base_url, timeout=30) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        responses = list(pool.map(lambda _: client.post("/chat/completions", json=body), range(n)))
    assert all(r.status_code == 200 for r in responses)
    return Counter(r.headers["x-gateway-target"] for r in responses)


def test_weighted_split(balance_gateway: Gateway, up: dict) -> None:
    counts = _targets(balance_gateway, "weighted", 800)
    # 3:1 -> 75% expected; 800 draws keep the share within +-5 points (>4 sigma).
    assert 0.70 <= counts["a/m"] / 800 <= 0.80


def test_round_robin_interleaves_by_weight(balance_gateway: Gateway, up: dict) -> None:
    order = [chat(balance_gateway, "rr").headers["x-gateway-target"] for _ in range(8)]
    assert Counter(order) == {"a/m": 6, "b/m": 2}
    assert order[:4].count("b/m") == 1 and order[4:].count("b/m") == 1


def test_least_busy_avoids_the_loaded_target(balance_gateway: Gateway, up: dict) -> None:
    slow = {"messages": [{"role": "user", "content": "[slow] x y z w"}], "stream": True}
    with ThreadPoolExecutor(2) as pool:
        long_one = pool.submit(chat, balance_gateway, "busy", body=slow)
        deadline = time.monotonic() + 10
        while not (up["a"].requests() or up["b"].requests()):  # the stream is under way
            assert time.monotonic() < deadline
            time.sleep(0.05)
        busy = "a/m" if up["a"].requests() else "b/m"
        quick = [chat(balance_gateway, "busy").headers["x-gateway-target"] for _ in range(5)]
        assert long_one.result().status_code == 200
    assert busy not in quick


def test_session_affinity_sticks(balance_gateway: Gateway, up: dict) -> None:
    def target_of(session: str) -> str:
        response = chat(balance_gateway, "sticky", headers={"X-Session-ID": session})
        return str(response.headers["x-gateway-target"])

    placed = {f"s{i}": target_of(f"s{i}") for i in range(30)}
    assert len(set(placed.values())) == 3  # sessions spread over all targets
    for session, target in list(placed.items())[:10]:
        assert target_of(session) == target  # and stay put
    # The `user` field is a session key too.
    by_user = {
        chat(balance_gateway, "sticky", body={"user": "u7"}).headers["x-gateway-target"]
        for _ in range(5)
    }
    assert len(by_user) == 1


def test_tier_two_only_when_tier_one_is_down(balance_gateway: Gateway, up: dict) -> None:
    assert set(_targets(balance_gateway, "tiered", 20)) == {"a/t"}
    # Two failures open a/t's breaker (failures: 2); each request fails over to tier 2.
    up["a"].reset()
    up["a"].faults({"status": 500}, {"status": 500})
    for _ in range(2):
        response = chat(balance_gateway, "tiered")
        assert response.status_code == 200 and response.headers["x-gateway-target"] == "b/t"
    # Open: tier 2 serves alone, and a is not asked at all.
    assert [chat(balance_gateway, "tiered").headers["x-gateway-target"] for _ in range(5)] == [
        "b/t"
    ] * 5
    assert seen(up["a"]) == 2
    targets = httpx.get(balance_gateway.base_url + "/gateway/targets").json()["data"]
    state = {t["id"]: t for t in targets}
    assert state["a/t"]["state"] == "open"
    assert state["a/t"]["last_error"] == "injected fault 500"
    assert state["b/t"]["state"] == "closed"


def test_sessions_move_only_off_a_dead_target(tmp_path: Path) -> None:
    servers = {name: FakeUpstream(tmp_path, name) for name in ("s1", "s2", "s3")}
    config = {
        "providers": {n: {"kind": "openai", "base_url": s.base_url} for n, s in servers.items()},
        "models": {
            "sticky": {
                "strategy": "session",
                "targets": [{"provider": n, "model": "m"} for n in servers],
            }
        },
        "routing": {"health_check_interval": 0.2},
    }
    gateway = Gateway(tmp_path, config)

    def target_of(session: str) -> str:
        response = chat(gateway, "sticky", headers={"X-Session-ID": session})
        assert response.status_code == 200
        return str(response.headers["x-gateway-target"])

    try:
        before = {f"user-{i}": target_of(f"user-{i}") for i in range(40)}
        assert set(before.values()) == {"s1/m", "s2/m", "s3/m"}
        servers["s2"].stop()
        time.sleep(0.6)  # the health checks notice
        after = {session: target_of(session) for session in before}
        for session, target in before.items():
            if target == "s2/m":
                assert after[session] in {"s1/m", "s3/m"}
                assert target_of(session) == after[session]  # sticky on its new target
            else:
                assert after[session] == target  # sessions elsewhere did not move
    finally:
        gateway.stop()
        for server in servers.values():
            server.stop()


def test_a_target_at_its_limit_sends_requests_elsewhere(tmp_path: Path) -> None:
    servers = {name: FakeUpstream(tmp_path, name) for name in ("busy", "free")}
    config = {
        "providers": {n: {"kind": "openai", "base_url": s.base_url} for n, s in servers.items()},
        "models": {
            "pair": {
                "strategy": "round-robin",
                "targets": [
                    {"provider": "busy", "model": "m", "max_concurrency": 1},
                    {"provider": "free", "model": "m"},
                ],
            }
        },
        "routing": {"health_check_interval": 0},
    }
    gateway = Gateway(tmp_path, config)
    slow = {"messages": [{"role": "user", "content": "[slow] a b c d e"}], "stream": True}
    try:
        with ThreadPoolExecutor(2) as pool:
            holder = None
            # Occupy busy/m's only slot with a slow stream.
            for _ in range(4):
                future = pool.submit(chat, gateway, "pair", body=slow)
                time.sleep(0.3)
                if servers["busy"].requests():
                    holder = future
                    break
                future.result()
            assert holder is not None
            quick = [chat(gateway, "pair").headers["x-gateway-target"] for _ in range(6)]
            assert holder.result().status_code == 200
        assert quick == ["free/m"] * 6  # round-robin would alternate; the limit overrides it
    finally:
        gateway.stop()
        for server in servers.values():
            server.stop()


def test_a_slow_drip_within_the_idle_limit_is_not_an_error(
    retry_gateway: Gateway, up: dict
) -> None:
    # 0.15 s between chunks: under the idle limit (1 s), and 4 gaps under the total (1 s).
    up["a"].faults({"drip": 0.15})
    body = {"messages": [{"role": "user", "content": "one two three"}], "stream": True}
    response = chat(retry_gateway, "single", body=body)
    assert response.status_code == 200
    assert '"error"' not in response.text and response.text.endswith("data: [DONE]\n\n")
    assert response.text.count("data: {") == 5
    # A gap longer than the idle limit ends the stream with an error event.
    up["a"].faults({"drip": 1.5})
    response = chat(retry_gateway, "single", body=body)
    assert '"error"' in response.text and response.text.endswith("data: [DONE]\n\n")
    assert seen(up["a"]) == 2
