"""GET /metrics after a known sequence of requests through a gateway process:
every counter and histogram count agrees with what the clients saw."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.gateway.observability.scrape import (
    Scrape,
    dashboard_queries,
    exported_names,
    labels,
    metric_names,
    scrape,
)
from tests.helpers import FakeUpstream, Gateway

KEYS = {"team": f"sk-team-{secrets.token_hex(8)}", "limited": f"sk-lim-{secrets.token_hex(8)}"}
USER = [{"role": "user", "content": "hello there world"}]
MODELS = ("chat", "flaky", "retrying", "primary", "slow")


@pytest.fixture(scope="module")
def ups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FakeUpstream]]:
    tmp = tmp_path_factory.mktemp("metrics-ups")
    servers = {name: FakeUpstream(tmp, name) for name in ("alpha", "faulty", "slowpoke")}
    yield servers
    for server in servers.values():
        server.stop()


def metrics_config(ups: dict[str, FakeUpstream]) -> dict[str, Any]:
    providers = {name: {"kind": "openai", "base_url": s.base_url} for name, s in ups.items()}
    one_attempt = {"attempts": 1}
    return {
        "providers": providers,
        "routing": {
            "breaker": {"failures": 2, "error_ratio": None, "cooldown": 600},
            "health_check_interval": 0,
        },
        "models": {
            "chat": {"targets": [{"provider": "alpha", "model": "m1"}]},
            "flaky": {"targets": [{"provider": "faulty", "model": "m1"}], "retries": one_attempt},
            "retrying": {
                "targets": [{"provider": "faulty", "model": "m2"}],
                "retries": {"attempts": 2, "backoff_base": 0},
            },
            "primary": {
                "targets": [{"provider": "faulty", "model": "m3"}],
                "retries": one_attempt,
                "fallbacks": ["chat"],
            },
            "slow": {"targets": [{"provider": "slowpoke", "model": "m1", "max_concurrency": 1}]},
        },
        "auth": {
            "keys": [
                {"name": "team", "key": "${TEAM_KEY}"},
                {"name": "limited", "key": "${LIMITED_KEY}", "rpm": 1},
            ]
        },
    }


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, ups: dict[str, FakeUpstream]
) -> Iterator[Gateway]:
    env = {"TEAM_KEY": KEYS["team"], "LIMITED_KEY": KEYS["limited"]}
    server = Gateway(tmp_path_factory.mktemp("metrics-gw"), metrics_config(ups), env=env)
    yield server
    server.stop()


class Traffic:
    """Requests through the openai SDK, and what their clients saw."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.errors: Counter[tuple[str, str, str]] = Counter()
        self.tokens: Counter[tuple[str, str]] = Counter()
        self.streams: Counter[str] = Counter()

    def client(self, key: str | None) -> OpenAI:
        api_key = KEYS[key] if key else "sk-not-a-key"
        return OpenAI(base_url=self.gateway.base_url, api_key=api_key, max_retries=0)

    def chat(self, model: str, key: str | None = "team", stream: bool = False) -> int:
        label = model if model in MODELS else "other"
        if key is None:
            label = ""  # refused before the body is read
        extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if stream else {}
        try:
            raw = self.client(key).chat.completions.with_raw_response.create(
                model=model, messages=USER, stream=stream, **extra
            )
        except openai.APIStatusError as exc:
            self.requests[(label, "", str(exc.status_code))] += 1
            self.errors[(label, "", str(exc.type))] += 1
            return exc.status_code
        target = raw.headers["x-gateway-target"]
        self.requests[(label, target, "200")] += 1
        if stream:
            self.streams[label] += 1
            usage = [chunk.usage for chunk in raw.parse() if chunk.usage][-1]
        else:
            usage = raw.parse().usage
        assert usage is not None
        self.tokens[(label, "prompt")] += usage.prompt_tokens
        self.tokens[(label, "completion")] += usage.completion_tokens
        return 200


def counts(scraped: Scrape, name: str, *label_names: str) -> Counter[tuple[str, ...]]:
    result: Counter[tuple[str, ...]] = Counter()
    for key, value in scraped.samples.get(name, {}).items():
        pairs = dict(key)
        result[tuple(pairs[n] for n in label_names)] = int(value)
    return result


def test_metrics_after_known_traffic(gateway: Gateway, ups: dict[str, FakeUpstream]) -> None:
    traffic = Traffic(gateway)
    faulty = ups["faulty"]
    assert traffic.chat("chat") == 200
    assert traffic.chat("chat") == 200
    assert traffic.chat("chat", stream=True) == 200
    # An upstream failure, twice: the second opens faulty/m1's breaker (failures: 2)
    faulty.faults({"status": 500}, {"status": 500})
    assert traffic.chat("flaky") == 502
    assert traffic.chat("flaky") == 502
    assert traffic.chat("flaky") == 503  # no usable backend while the breaker is open
    faulty.faults({"status": 500})
    assert traffic.chat("retrying") == 200  # retried once on the same target
    faulty.faults({"status": 500})
    assert traffic.chat("primary") == 200  # answered by its fallback, chat
    assert traffic.chat("chat", key="limited") == 200
    assert traffic.chat("chat", key="limited") == 429  # rpm: 1
    assert traffic.chat("no-such-model") == 404
    assert traffic.chat("chat", key=None) == 401

    scraped = scrape(gateway.url)
    status = counts(scraped, "vllm_gateway_requests_total", "model", "target", "status")
    assert status == traffic.requests
    assert status[("primary", "alpha/m1", "200")] == 1
    assert status[("retrying", "faulty/m2", "200")] == 1
    errors = counts(scraped, "vllm_gateway_errors_total", "model", "target", "error_type")
    assert errors == traffic.errors
    assert errors[("chat", "", "rate_limit_error")] == 1
    assert counts(scraped, "vllm_gateway_tokens_total", "model", "type") == traffic.tokens
    assert counts(scraped, "vllm_gateway_rate_limit_rejections_total", "key") == {("limited",): 1}
    retries = counts(scraped, "vllm_gateway_retries_total", "model", "target", "error_type")
    # The error type is the upstream's own (the fake's 500s say server_error).
    assert retries == {("retrying", "faulty/m2", "server_error"): 1}
    fallbacks = counts(scraped, "vllm_gateway_fallbacks_total", "model", "to_model", "reason")
    assert fallbacks == {("primary", "chat", "error"): 1}

    per_model = per_model_counts(traffic.requests)
    assert counts(scraped, "vllm_gateway_request_duration_seconds_count", "model") == per_model
    assert sum(per_model.values()) == 12
    for (model,) in per_model:
        assert scraped.value("vllm_gateway_request_duration_seconds_sum", model=model) > 0
    # Other models' series exist (bound on first use) and stay at zero.
    ttft = +counts(scraped, "vllm_gateway_time_to_first_token_seconds_count", "model")
    assert ttft == {(m,): n for m, n in traffic.streams.items()} == {("chat",): 1}
    itl = +counts(scraped, "vllm_gateway_inter_token_latency_seconds_count", "model")
    assert itl == {("chat",): 1}

    breaker = counts(scraped, "vllm_gateway_circuit_breaker_state", "target")
    assert breaker == {
        ("alpha/m1",): 0,
        ("faulty/m1",): 2,
        ("faulty/m2",): 0,
        ("faulty/m3",): 0,
        ("slowpoke/m1",): 0,
    }


def per_model_counts(requests: Counter[tuple[str, str, str]]) -> Counter[tuple[str]]:
    result: Counter[tuple[str]] = Counter()
    for (model, _, _), n in requests.items():
        result[(model,)] += n
    return result


def test_in_flight_and_queue_depth_per_target(
    gateway: Gateway, ups: dict[str, FakeUpstream]
) -> None:
    slow = ups["slowpoke"]
    slow.reset()
    slow.faults({"delay": 2}, {"delay": 2})
    headers = {"Authorization": f"Bearer {KEYS['team']}"}
    body = {"model": "slow", "messages": USER}
    statuses: list[int] = []

    def call() -> None:
        response = httpx.post(
            gateway.base_url + "/chat/completions", json=body, headers=headers, timeout=30
        )
        statuses.append(response.status_code)

    callers = [threading.Thread(target=call) for _ in range(2)]
    for caller in callers:
        caller.start()
    deadline = time.monotonic() + 5
    while True:  # until both reached the gateway: one at the upstream, one queued
        scraped = scrape(gateway.url)
        queued = scraped.value("vllm_gateway_target_queue_depth", target="slowpoke/m1")
        if queued == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert queued == 1
    assert scraped.value("vllm_gateway_target_in_flight", target="slowpoke/m1") == 1
    assert scraped.value("vllm_gateway_target_in_flight", target="alpha/m1") == 0
    for caller in callers:
        caller.join()
    assert statuses == [200, 200]
    after = scrape(gateway.url)
    assert after.value("vllm_gateway_target_in_flight", target="slowpoke/m1") == 0
    assert after.value("vllm_gateway_target_queue_depth", target="slowpoke/m1") == 0
    assert after.series("vllm_gateway_requests_total", model="slow") == {
        labels(model="slow", target="slowpoke/m1", status="200", endpoint="/v1/chat/completions"): 2
    }


def test_metrics_endpoint_is_not_counted_and_needs_no_key(gateway: Gateway) -> None:
    first = scrape(gateway.url)
    second = scrape(gateway.url)
    assert (
        first.samples["vllm_gateway_requests_total"]
        == second.samples["vllm_gateway_requests_total"]
    )
    assert first.families["vllm_gateway_requests"] == "counter"
    assert first.families["vllm_gateway_request_duration_seconds"] == "histogram"


def test_only_inference_endpoints_are_counted(tmp_path: Path) -> None:
    """Probes and listings are not traffic: only the OpenAI inference endpoints count."""
    upstream = FakeUpstream(tmp_path, "solo")
    config = {
        "providers": {"solo": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"solo": {"targets": [{"provider": "solo", "model": "m"}]}},
    }
    gateway = Gateway(tmp_path, config)
    try:
        httpx.get(gateway.url + "/health")
        httpx.get(gateway.base_url + "/models")
        httpx.post(gateway.base_url + "/embeddings", json={"model": "solo", "input": "hi"})
        scraped = scrape(gateway.url)
    finally:
        gateway.stop()
        upstream.stop()
    assert counts(scraped, "vllm_gateway_requests_total", "model", "target", "status") == {
        ("solo", "solo/m", "200"): 1
    }


def test_dashboard_queries_use_exported_metrics(gateway: Gateway) -> None:
    """Every metric a dashboard query selects is one this gateway exports
    (engine ``vllm:`` series are checked against real engines, in the e2e tests)."""
    exported = exported_names(scrape(gateway.url))
    queried = {name for expr in dashboard_queries() for name in metric_names(expr)}
    assert all(name.startswith(("vllm_gateway_", "vllm:")) for name in queried), queried
    ours = {name for name in queried if name.startswith("vllm_gateway_")}
    assert {
        "vllm_gateway_requests_total",
        "vllm_gateway_request_duration_seconds_bucket",
        "vllm_gateway_time_to_first_token_seconds_bucket",
        "vllm_gateway_tokens_total",
        "vllm_gateway_circuit_breaker_state",
        "vllm_gateway_target_queue_depth",
    } <= ours
    assert ours - exported == set()
