"""``serve --workers N``: several processes on one port, one set of metrics, clean exits."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import FakeUpstream, Gateway


def children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(line) for line in out.split()}


def requests_total(gateway: Gateway) -> float:
    text = httpx.get(gateway.url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "vllm_gateway_requests"
        for sample in family.samples
        if sample.name == "vllm_gateway_requests_total"
    )


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[FakeUpstream]:
    server = FakeUpstream(tmp_path, "w")
    yield server
    server.stop()


def test_workers_share_the_port_and_the_metrics(tmp_path: Path, upstream: FakeUpstream) -> None:
    config = {
        "providers": {"up": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "up", "model": "m"}]}},
    }
    gateway = Gateway(tmp_path, config, extra_args=["--workers", "2"])
    try:
        workers = children(gateway.proc.pid)
        assert len(workers) == 2
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(40):
            # A new connection each time, so the kernel spreads them over both workers.
            assert httpx.post(gateway.base_url + "/chat/completions", json=body).status_code == 200
        # Whichever worker answers the scrape, it reports the total of both.
        assert [requests_total(gateway) for _ in range(6)] == [40.0] * 6

        # A worker that dies is replaced, and the port keeps answering.
        victim = next(iter(workers))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            victim in children(gateway.proc.pid) or len(children(gateway.proc.pid)) < 2
        ):
            time.sleep(0.1)
        replaced = children(gateway.proc.pid)
        assert len(replaced) == 2 and victim not in replaced
        assert httpx.post(gateway.base_url + "/chat/completions", json=body).status_code == 200
    finally:
        assert gateway.stop() == 0
    # SIGTERM to the parent stops every worker.
    for pid in workers | replaced:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
