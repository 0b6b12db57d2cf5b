"""End to end: ``serve --workers 2`` with a real engine. The engine is
supervised by the parent's engine process; whichever worker answers shows it
in /ready and /metrics (its state, and its own vllm:* series), and serves it."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.engine_gateway import (
    EngineGateway,
    build_tiny,
    launch_engine_gateway,
    ready_payload,
    tiny_engine,
)
from tests.gateway.observability.scrape import scrape

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workers_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineGateway]:
    path = build_tiny("llama3")["llama3"]
    config = {
        "engines": {"solo": tiny_engine(path, "llama3")},
        "models": {"solo": {"targets": [{"engine": "solo"}]}},
    }
    started = launch_engine_gateway(
        tmp_path_factory.mktemp("workers"), config, extra_args=["--workers", "2"]
    ).settle()
    yield started
    started.gateway.stop()


def test_every_worker_reports_the_engine(workers_gateway: EngineGateway) -> None:
    gateway = workers_gateway.gateway
    # New connections each time: the kernel spreads them over both workers.
    for _ in range(8):
        payload = ready_payload(gateway)
        assert payload["status"] == "ready"
        assert payload["engines"]["solo"]["state"] == "ready"
        assert payload["engines"]["solo"]["model"] == "tiny-llama3"
        scraped = scrape(gateway.url)
        assert scraped.value("vllm_gateway_engine_state", engine="solo", state="ready") == 1
        assert scraped.value("vllm_gateway_engine_metrics_up", engine="solo") == 1
        assert scraped.series("vllm:num_requests_running", engine="solo")


def test_the_workers_serve_the_engine(workers_gateway: EngineGateway) -> None:
    client = openai.OpenAI(base_url=workers_gateway.base_url, api_key="unused", max_retries=0)
    for _ in range(4):
        reply = client.chat.completions.create(
            model="solo", messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
        assert reply.model == "solo" and reply.usage is not None
