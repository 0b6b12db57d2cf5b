"""The access log's lines, written without structlog's processor chain, read
like the gateway's other log lines; the clock formats like datetime does."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.observability.logs import AccessLog, AccessRecord, UtcClock

KEYS = [
    "logger",
    "request_id",
    "method",
    "path",
    "status",
    "latency_ms",
    "model",
    "target",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "key_name",
    "error_type",
    "cache",
    "failover",
    "event",
    "level",
    "timestamp",
]


def test_clock_matches_datetime_to_the_microsecond() -> None:
    clock = UtcClock("+00:00")
    for at in (1764650000.0, 1764650000.5, 1764650000.999999, 1764650001.000001, 1.25):
        expected = datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")
        assert clock.iso(at) == expected
    assert UtcClock().iso(1764650000.25).endswith(".250000Z")


def test_each_request_is_one_json_line_readable_at_once(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    with open(path, "a", buffering=1) as stream:
        log = AccessLog(stream)
        record = AccessRecord("req-1", "POST", "/v1/chat/completions", time.perf_counter())
        record.status, record.model, record.ttft = 200, "chat", 0.0125
        before = time.time()
        log.write(record)
        [line] = path.read_bytes().splitlines()  # on disk before the file is closed
        record.request_id, record.status = "req-2", 429
        log.write(record)
    first, second = (orjson.loads(raw) for raw in path.read_bytes().splitlines())
    assert list(first) == KEYS
    assert orjson.loads(line) == first
    assert (first["logger"], first["event"], first["level"]) == ("access", "access", "info")
    assert (first["request_id"], first["status"], first["ttft_ms"]) == ("req-1", 200, 12.5)
    assert (second["request_id"], second["status"]) == ("req-2", 429)
    stamp = datetime.strptime(first["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert before - 1 <= stamp.timestamp() <= time.time() + 1
