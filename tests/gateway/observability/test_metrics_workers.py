"""Several gateway processes sharing one multiprocess metrics directory (as
``serve --workers N`` runs them): a scrape of any one shows the totals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.observability.scrape import scrape
from tests.helpers import ROOT, FakeUpstream, Gateway

USER = [{"role": "user", "content": "count me"}]


def _config(upstream: FakeUpstream) -> dict[str, object]:
    return {
        "providers": {"up": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "up", "model": "m"}]}},
        "routing": {"health_check_interval": 0},
    }


def test_two_processes_counts_add_up(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    upstream = FakeUpstream(tmp_path, "shared")
    first = Gateway(tmp_path, _config(upstream), env=env)
    second = Gateway(tmp_path, _config(upstream), env=env)
    try:
        tokens = 0
        for gateway, n in ((first, 2), (second, 3)):
            client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
            for _ in range(n):
                usage = client.chat.completions.create(model="chat", messages=USER).usage
                assert usage is not None
                tokens += usage.completion_tokens
        for gateway in (first, second):
            scraped = scrape(gateway.url)
            requests = scraped.value(
                "vllm_gateway_requests_total",
                model="chat",
                target="up/m",
                status="200",
                endpoint="/v1/chat/completions",
            )
            assert requests == 5
            assert scraped.value("vllm_gateway_request_duration_seconds_count", model="chat") == 5
            completion = scraped.value("vllm_gateway_tokens_total", model="chat", type="completion")
            assert completion == tokens
            # Live gauges: one per process, summed.
            assert scraped.value("vllm_gateway_target_in_flight", target="up/m") == 0
        second.stop()
        # A stopped worker's counts stay in the totals.
        after = scrape(first.url)
        total = after.value(
            "vllm_gateway_requests_total",
            model="chat",
            target="up/m",
            status="200",
            endpoint="/v1/chat/completions",
        )
        assert total == 5
    finally:
        first.stop()
        second.stop()
        upstream.stop()
    # Stopped processes drop their live gauges and keep their counters.
    files = {p.name.rsplit("_", 1)[0] for p in metrics_dir.glob("*.db")}
    assert "counter" in files
    assert not {name for name in files if name.startswith("gauge_live")}


FORKED_WORKERS = """
import asyncio, os, sys, time
from pathlib import Path
from gateway.observability.metrics import Metrics, prepare_multiprocess
from gateway.observability.logs import AccessRecord

prepare_multiprocess(Path(sys.argv[1]))  # as the server does before forking workers

def serve_requests(n):
    metrics = Metrics(["chat"])
    for i in range(n):
        record = AccessRecord(str(i), "POST", "/v1/chat/completions", time.perf_counter())
        record.model, record.target, record.status, record.completion_tokens = "chat", "t", 200, 3
        metrics.observe(record, time.perf_counter())

children = []
for n in (2, 5):
    pid = os.fork()
    if pid == 0:
        serve_requests(n)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
sys.stdout.write(asyncio.run(Metrics(["chat"]).render()).decode())
"""


def test_prepare_multiprocess_before_forking(tmp_path: Path) -> None:
    """What ``serve --workers`` does: prepare in the parent, fork, count in each child."""
    metrics_dir = tmp_path / "mp"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale from an earlier run")
    done = subprocess.run(
        [sys.executable, "-c", FORKED_WORKERS, str(metrics_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    scraped = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(done.stdout)
        for s in family.samples
    }
    key = (
        ("endpoint", "/v1/chat/completions"),
        ("model", "chat"),
        ("status", "200"),
        ("target", "t"),
    )
    assert scraped[("vllm_gateway_requests_total", key)] == 7
    tokens = (("model", "chat"), ("type", "completion"))
    assert scraped[("vllm_gateway_tokens_total", tokens)] == 21
    assert not (metrics_dir / "counter_999999.db").exists()
