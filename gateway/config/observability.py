"""The ``audit:`` and ``tracing:`` sections of models.yaml. Both are off
unless present; like the rest of the config, unknown keys are errors."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuditConfig(_Strict):
    """A JSON-lines file of every prompt and completion, masked and rotated."""

    path: str = Field(description="The audit file; rotated files sit beside it")
    retention_days: float = Field(30.0, gt=0, description="Rotated files older than this go")
    max_bytes: int = Field(100 * 1024 * 1024, gt=0, description="Rotate past this size")
    backups: int = Field(10, ge=0, description="Rotated files kept at most")
    redact: list[str] = Field(
        default_factory=list, description="More regular expressions to mask, besides the defaults"
    )
    redact_defaults: bool = Field(True, description="Mask e-mail addresses and phone numbers")

    @field_validator("redact")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"'{pattern}' is not a valid regular expression: {exc}") from exc
        return patterns


class TracingConfig(_Strict):
    """OpenTelemetry spans sent to an OTLP/HTTP collector (needs the ``otel`` extra)."""

    otlp_endpoint: str = Field(description="e.g. http://127.0.0.1:4318/v1/traces")
    service_name: str = "vllm-gateway"
    sample_ratio: float = Field(1.0, ge=0, le=1, description="Share of requests traced")
