"""The audit: and tracing: sections: off unless present, and mistakes named."""

from __future__ import annotations

import pytest

from adapters.errors import ConfigError
from gateway.config.loader import parse_config

BASE = """\
providers:
  up: {kind: openai, base_url: http://127.0.0.1:9/v1}
models:
  chat: {targets: [{provider: up, model: m}]}
"""


def test_both_are_off_by_default() -> None:
    config = parse_config(BASE, env={})
    assert config.audit is None and config.tracing is None


def test_audit_and_tracing_load_with_defaults() -> None:
    text = BASE + (
        "audit: {path: /tmp/audit.jsonl, redact: ['sk-[a-z]+']}\n"
        "tracing: {otlp_endpoint: 'http://127.0.0.1:4318/v1/traces'}\n"
    )
    config = parse_config(text, env={})
    assert config.audit is not None and config.tracing is not None
    assert config.audit.redact == ["sk-[a-z]+"] and config.audit.redact_defaults is True
    assert config.audit.retention_days == 30 and config.audit.backups == 10
    assert config.tracing.service_name == "vllm-gateway" and config.tracing.sample_ratio == 1.0


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("audit: {path: a.jsonl, redact: ['(unclosed']}", "audit.redact"),
        ("audit: {path: a.jsonl, max_bytes: 0}", "audit.max_bytes"),
        ("audit: {path: a.jsonl, retension_days: 3}", "audit.retension_days"),
        ("tracing: {otlp_endpoint: x, sample_ratio: 2}", "tracing.sample_ratio"),
        ("tracing: {service_name: gw}", "tracing.otlp_endpoint"),
    ],
)
def test_mistakes_name_their_path(section: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + section + "\n", env={})
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems
