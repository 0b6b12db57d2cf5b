"""OpenTelemetry tracing through a gateway process, exported over OTLP/HTTP to
a real (small) receiver: a span per request, a child span per attempt."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.helpers import FakeUpstream, Gateway, ServerProcess, free_port, http_json

USER = [{"role": "user", "content": "trace me"}]


class Collector(ServerProcess):
    def __init__(self, tmp: Path) -> None:
        port = free_port()
        args = [sys.executable, "-m", "tests.fakes.otlp_collector", "--port", str(port)]
        super().__init__(args, port, tmp / f"otlp-{port}.log")
        self.endpoint = self.url + "/v1/traces"

    def spans(self) -> list[dict[str, Any]]:
        return list(http_json("GET", self.url + "/_spans"))


@pytest.fixture(scope="module")
def traced(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Gateway, FakeUpstream, Collector]]:
    tmp = tmp_path_factory.mktemp("tracing")
    collector = Collector(tmp)
    upstream = FakeUpstream(tmp, "up", otlp_endpoint=collector.endpoint)
    config = {
        "providers": {"up": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {
            "chat": {
                "targets": [{"provider": "up", "model": "m"}],
                "retries": {"attempts": 2, "backoff_base": 0},
            }
        },
        "routing": {"health_check_interval": 0},
        "tracing": {"otlp_endpoint": collector.endpoint, "service_name": "gw-under-test"},
    }
    # Export every 100 ms rather than every 5 s.
    gateway = Gateway(tmp, config, env={"OTEL_BSP_SCHEDULE_DELAY": "100"})
    yield gateway, upstream, collector
    gateway.stop()
    collector.stop()
    upstream.stop()


def _trace_of(collector: Collector, request_id: str, spans_wanted: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        spans = collector.spans()
        roots = [s for s in spans if s["attributes"].get("gateway.request_id") == request_id]
        if roots:
            trace = [s for s in spans if s["trace_id"] == roots[0]["trace_id"]]
            if len(trace) >= spans_wanted or time.monotonic() > deadline:
                return trace
        assert time.monotonic() < deadline, spans
        time.sleep(0.1)


def test_a_retried_request_has_one_span_per_attempt(traced: tuple) -> None:
    gateway, upstream, collector = traced
    upstream.faults({"status": 500})
    client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=USER)
    request_id = raw.headers["x-request-id"]
    trace = _trace_of(collector, request_id, 5)
    (root,) = [s for s in trace if not s["parent_span_id"]]
    assert root["name"] == "POST /v1/chat/completions"
    assert root["service"] == "gw-under-test"
    assert root["attributes"]["http.response.status_code"] == 200
    assert root["attributes"]["gateway.model"] == "chat"
    assert root["attributes"]["gateway.target"] == "up/m"
    attempts = [s for s in trace if s["parent_span_id"] == root["span_id"]]
    assert len(attempts) == 2
    # Each attempt reached the (traced) upstream, whose span is the attempt's child.
    upstream_spans = [s for s in trace if s["service"] == "fake-upstream"]
    assert sorted(s["parent_span_id"] for s in upstream_spans) == sorted(
        s["span_id"] for s in attempts
    )
    assert {s["name"] for s in attempts} == {"upstream chat"}
    assert all(s["attributes"]["gateway.target"] == "up/m" for s in attempts)
    assert sorted(s["status"] for s in attempts) == [0, 2]  # unset, error
    failed = next(s for s in attempts if s["status"] == 2)
    assert failed["attributes"]["gateway.status"] == 502


def test_a_stream_has_its_upstream_span(traced: tuple) -> None:
    gateway, _, collector = traced
    client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=USER, stream=True)
    chunks = list(raw.parse())
    trace = _trace_of(collector, raw.headers["x-request-id"], 2)
    (root,) = [s for s in trace if not s["parent_span_id"]]
    (upstream_span,) = [s for s in trace if s["parent_span_id"] == root["span_id"]]
    assert upstream_span["name"] == "upstream chat_stream"
    assert upstream_span["attributes"]["gateway.chunks"] >= len([c for c in chunks if c.choices])
    assert root["attributes"]["gateway.request_id"] == raw.headers["x-request-id"]


def test_a_callers_trace_continues_through_the_gateway_to_the_upstream(traced: tuple) -> None:
    gateway, upstream, collector = traced
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="chat",
        messages=USER,
        extra_headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"},
    )
    trace = _trace_of(collector, raw.headers["x-request-id"], 3)
    assert {s["trace_id"] for s in trace} == {caller_trace}  # one trace, the caller's
    (server,) = [s for s in trace if s["attributes"].get("gateway.request_id")]
    assert server["parent_span_id"] == caller_span
    (client_span,) = [s for s in trace if s["parent_span_id"] == server["span_id"]]
    (upstream_span,) = [s for s in trace if s["service"] == "fake-upstream"]
    assert upstream_span["parent_span_id"] == client_span["span_id"]
    # The upstream was told its parent: the gateway's client span.
    seen = upstream.requests()[-1]["headers"]["traceparent"]
    assert seen == f"00-{caller_trace}-{client_span['span_id']}-01"
    # OpenTelemetry's GenAI attributes.
    assert server["attributes"]["gen_ai.request.model"] == "chat"
    assert server["attributes"]["gen_ai.usage.output_tokens"] > 0
    assert client_span["attributes"]["gen_ai.system"] == "openai"
    assert client_span["attributes"]["gen_ai.request.model"] == "m"
    assert client_span["attributes"]["gen_ai.response.model"] == "m"
    assert client_span["attributes"]["gen_ai.operation.name"] == "chat"
