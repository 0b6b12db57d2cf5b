"""End to end: the gateway's /metrics shows its real vLLM engines' state and
their own vllm:* series, each labelled with the engine it came from."""

from __future__ import annotations

import time

import openai
import pytest

from tests.engine_gateway import EngineGateway
from tests.gateway.observability.scrape import (
    Scrape,
    dashboard_queries,
    exported_names,
    metric_names,
    scrape,
)

pytestmark = pytest.mark.e2e

ENGINES = ("tiny-llama3", "tiny-qwen2", "tiny-deepseek-r1")
ENGINE_SERIES = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:generation_tokens_total",
    "vllm:prompt_tokens_total",
)


def _total(scraped: Scrape, name: str, **match: str) -> float:
    return sum(scraped.series(name, **match).values())


def test_engine_state_and_restarts(engines_gateway: EngineGateway) -> None:
    scraped = scrape(engines_gateway.gateway.url)
    for engine in ENGINES:
        states = scraped.series("vllm_gateway_engine_state", engine=engine)
        assert {dict(k)["state"]: v for k, v in states.items()} == {
            "starting": 0,
            "ready": 1,
            "restarting": 0,
            "failed": 0,
            "stopped": 0,
        }
        assert scraped.value("vllm_gateway_engine_metrics_up", engine=engine) == 1
    assert scraped.value("vllm_gateway_engine_state", engine="broken", state="failed") == 1
    assert scraped.value("vllm_gateway_engine_metrics_up", engine="broken") == 0
    restarts = scraped.series("vllm_gateway_engine_restarts_total")
    # Every engine of the shared gateway, the embedding engine (minilm) included.
    assert {dict(k)["engine"] for k in restarts} == {*ENGINES, "minilm", "broken"}


def test_engine_series_carry_the_engine_label(engines_gateway: EngineGateway) -> None:
    scraped = scrape(engines_gateway.gateway.url)
    for name in ENGINE_SERIES:
        for engine in ENGINES:
            series = scraped.series(name, engine=engine)
            assert series, f"{name} has no series for {engine}"
            # vLLM's own engine-core index is kept under another name.
            assert all(dict(k).get("model_name") == engine for k in series)
            assert all("engine_index" in dict(k) for k in series)
    assert not scraped.series("vllm:num_requests_running", engine="broken")
    # The engine's process metrics are not re-exported: only vllm:*.
    assert not [n for n in scraped.samples if n.startswith(("python_", "process_"))]


def test_generated_tokens_match_what_the_client_got(
    engines_gateway: EngineGateway,
) -> None:
    gateway = engines_gateway.gateway
    client = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    before = scrape(gateway.url)
    usage = client.chat.completions.create(
        model="tiny-llama3", messages=[{"role": "user", "content": "Count."}], max_tokens=12
    ).usage
    assert usage is not None and usage.completion_tokens > 0
    deadline = time.monotonic() + 10
    while True:  # vLLM records a step's stats just after answering
        after = scrape(gateway.url)
        generated = _total(after, "vllm:generation_tokens_total", engine="tiny-llama3") - _total(
            before, "vllm:generation_tokens_total", engine="tiny-llama3"
        )
        if generated >= usage.completion_tokens or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert generated == usage.completion_tokens
    counted = after.value(
        "vllm_gateway_tokens_total", model="tiny-llama3", type="completion"
    ) - before.samples.get("vllm_gateway_tokens_total", {}).get(
        frozenset({"model": "tiny-llama3", "type": "completion"}.items()), 0.0
    )
    assert counted == usage.completion_tokens
    for other in ("tiny-qwen2", "tiny-deepseek-r1"):
        assert _total(after, "vllm:generation_tokens_total", engine=other) == _total(
            before, "vllm:generation_tokens_total", engine=other
        )


def test_dashboard_engine_queries_use_real_vllm_metrics(engines_gateway: EngineGateway) -> None:
    exported = exported_names(scrape(engines_gateway.gateway.url))
    queried = {name for expr in dashboard_queries() for name in metric_names(expr)}
    engine_names = {name for name in queried if name.startswith("vllm:")}
    assert {"vllm:kv_cache_usage_perc", "vllm:num_requests_waiting"} <= engine_names
    assert queried - exported == set()
