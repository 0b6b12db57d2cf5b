"""Structured logs: JSON lines (console rendering on a TTY), one access line
per request. Loggers are built once at startup and passed in; nothing here
holds global state beyond structlog's own configuration."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import structlog

# Keys that must never be logged, whatever a caller passes.
_SECRET_KEYS = frozenset({"authorization", "api_key", "x-api-key", "key", "token", "password"})


def _drop_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in _SECRET_KEYS.intersection(event):
        event[key] = "***"
    return event


def _json_line(_: Any, __: str, event: dict[str, Any]) -> bytes:
    return orjson.dumps(event, default=str)


def make_logger(stream: Any = None, *, name: str = "gateway") -> Any:
    """A bound structlog logger writing JSON lines (or console lines on a TTY)."""
    stream = stream or sys.stderr
    console = stream.isatty()
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
        # Tracebacks go to the server's log (as text), never to a client.
        structlog.processors.format_exc_info,
    ]
    if console:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
        factory: Any = structlog.PrintLoggerFactory(stream)
    else:
        processors.append(_json_line)
        factory = structlog.BytesLoggerFactory(getattr(stream, "buffer", stream))
    return structlog.wrap_logger(
        factory(),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=True,
    ).bind(logger=name)


# What a guardrail found in one text: (guardrail, stage, action, the kinds
# found, one per finding). Never the values.
Finding = tuple[str, str, str, Sequence[str]]


def count_findings(found: Iterable[Finding]) -> dict[tuple[str, str, str, str], int]:
    """Findings counted by guardrail, stage, action and kind."""
    counts: dict[tuple[str, str, str, str], int] = {}
    for guardrail, stage, action, kinds in found:
        for kind in kinds:
            key = (guardrail, stage, action, kind)
            counts[key] = counts.get(key, 0) + 1
    return counts


@dataclass(slots=True)
class AccessRecord:
    """What the access line says about one request; filled in along the way."""

    request_id: str
    method: str
    path: str
    started: float
    model: str | None = None
    target: str | None = None
    status: int = 0
    ttft: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    key_name: str | None = None
    # The caller's data_retention (a JWT claim): none keeps its content out of the audit log.
    data_retention: Any = None
    error_type: str | None = None
    # Streams: mean seconds between chunks (metrics).
    inter_token: float | None = None
    # A stream that failed over mid-way: "engine/a -> engine/b".
    failover: str | None = None
    # For the audit log: the client's body, and the result (or a stream's texts).
    request_body: dict[str, Any] | None = None
    completion: dict[str, Any] | list[str] | None = None
    # Guardrail findings, a text's at a time: never the values.
    guardrails: list[Finding] | None = None
    # Placeholder -> the caller's value mapped back into the answer: the audit
    # log masks those values again, so it never holds them.
    restored: dict[str, str] | None = None
    # The response cache: hit, miss or bypass (None: the model does not cache).
    cache: str | None = None
    cache_semantic: bool = False
    tokens_saved: int | None = None  # a hit's cached usage


class UtcClock:
    """ISO 8601 times in UTC with microseconds; the date and the time of day
    are formatted once per second, the rest is one integer format."""

    __slots__ = ("_prefix", "_second", "_suffix")

    def __init__(self, suffix: str = "Z") -> None:
        self._suffix = suffix  # "Z" as structlog writes it, or "+00:00" as datetime does
        self._second = -1
        self._prefix = ""

    def iso(self, at: float) -> str:
        second, micro = divmod(round(at * 1_000_000), 1_000_000)  # rounded as datetime does
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        # zfill, not a :06d format spec: half the cost, on every request's line
        return f"{self._prefix}.{str(micro).zfill(6)}{self._suffix}"


class AccessLog:
    """One JSON line per request, with the same keys as the gateway's other
    log lines (``logger``, ``event``, ``level``, ``timestamp``).

    It runs for every request, so it skips structlog's processor chain: the
    line is built and serialized in one step and written at once (one write,
    nothing buffered in the process). On a terminal the lines go through
    structlog's console renderer instead, for people reading them."""

    def __init__(self, stream: IO[Any] | None = None) -> None:
        stream = stream or sys.stderr
        self._console = make_logger(stream, name="access") if stream.isatty() else None
        self._out: IO[bytes] = stream.buffer if hasattr(stream, "buffer") else stream
        self._clock = UtcClock()

    def write(self, record: AccessRecord) -> None:
        fields = {
            "request_id": record.request_id,
            "method": record.method,
            "path": record.path,
            "status": record.status,
            "latency_ms": round((time.perf_counter() - record.started) * 1000, 3),
            "model": record.model,
            "target": record.target,
            "ttft_ms": None if record.ttft is None else round(record.ttft * 1000, 3),
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "key_name": record.key_name,
            "error_type": record.error_type,
            "cache": record.cache,
            "failover": record.failover,
        }
        if self._console is not None:
            self._console.info("access", **fields)
            return
        line = {
            "logger": "access",
            **fields,
            "event": "access",
            "level": "info",
            "timestamp": self._clock.iso(time.time()),
        }
        self._out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        self._out.flush()
