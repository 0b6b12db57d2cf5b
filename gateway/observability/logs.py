"""Structured logs: JSON lines (console rendering on a TTY), one access line
per request. Loggers are built once at startup and passed in; nothing here
holds global state beyond structlog's own configuration."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

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
    # Guardrail findings, counted (guardrail, stage, action, kind) -> n: never the values.
    guardrails: dict[tuple[str, str, str, str], int] | None = None
    # Placeholder -> the caller's value mapped back into the answer: the audit
    # log masks those values again, so it never holds them.
    restored: dict[str, str] | None = None
    # The response cache: hit, miss or bypass (None: the model does not cache).
    cache: str | None = None
    cache_semantic: bool = False
    tokens_saved: int | None = None  # a hit's cached usage


class AccessLog:
    """One JSON line per request through a structlog logger of its own."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger

    def write(self, record: AccessRecord) -> None:
        self._logger.info(
            "access",
            request_id=record.request_id,
            method=record.method,
            path=record.path,
            status=record.status,
            latency_ms=round((time.perf_counter() - record.started) * 1000, 3),
            model=record.model,
            target=record.target,
            ttft_ms=None if record.ttft is None else round(record.ttft * 1000, 3),
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            key_name=record.key_name,
            error_type=record.error_type,
            cache=record.cache,
            failover=record.failover,
        )
