# The issue's YAML is kept verbatim, comments and all.
# ruff: noqa: E501
"""The guardrails: and cache: sections load exactly as the issue shows them,
and every mistake is an error naming its YAML path and line."""

from __future__ import annotations

import pytest

from adapters.errors import ConfigError
from gateway.cli import routing_table
from gateway.config.guardrails import ModelGuardrailConfig, PiiGuardrailConfig
from gateway.config.loader import parse_config

ISSUE_SHAPE = """\
providers:
  local: {kind: openai, base_url: http://127.0.0.1:9/v1}
redis_url: redis://127.0.0.1:6379/0
guardrails:
  pii:
    kind: pii                  # email, phone, credit card (Luhn-checked), IBAN, IP address, API keys/secrets
    action: mask               # mask | block
    restore_in_response: true  # placeholders in the answer are mapped back for the caller
  no-secrets:
    kind: regex
    patterns: ['(?i)internal[- ]only']
    action: block
  judge:
    kind: model                # a model of models.yaml (e.g. a Llama Guard engine) classifies the input
    model: guard
    block_when: '(?i)^unsafe'
cache:
  backend: redis               # memory (default) | redis (uses redis_url)
  ttl_seconds: 3600
  semantic:                    # optional
    embedding_model: minilm    # a public embedding model of models.yaml
    threshold: 0.95            # cosine similarity
models:
  chat:
    targets: [{provider: local, model: chat}]
    guardrails: {input: [pii, no-secrets], output: [pii]}
    cache: true
  guard: {targets: [{provider: local, model: llama-guard}]}
  minilm: {targets: [{provider: local, model: all-MiniLM-L6-v2}], cache: always}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    return caught.value.problems


def test_the_issue_shape_loads_as_written() -> None:
    config = parse_config(ISSUE_SHAPE, env={})
    pii, judge = config.guardrails["pii"], config.guardrails["judge"]
    assert isinstance(pii, PiiGuardrailConfig) and pii.restore_in_response
    assert len(pii.entities) == 6
    assert isinstance(judge, ModelGuardrailConfig) and judge.model == "guard"
    chat = config.models["chat"]
    assert chat.guardrails is not None and chat.guardrails.input == ["pii", "no-secrets"]
    assert chat.cache is True and config.models["minilm"].cache == "always"
    assert config.cache is not None and config.cache.backend == "redis"
    assert config.cache.semantic is not None and config.cache.semantic.threshold == 0.95


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "input: [pii, no-secrets]",
            "input: [pii, no-secret]",
            "models.chat.guardrails.input[1]: unknown guardrail 'no-secret' "
            "(did you mean 'no-secrets'?), line 26",
        ),
        (
            "output: [pii]",
            "output: [judge]",
            "models.chat.guardrails.output[0]: 'judge' is a model guardrail",
        ),
        ("kind: pii ", "kind: pi ", "guardrails.pii.kind: unknown kind 'pi' (did you mean 'pii'?)"),
        ("action: mask ", "action: hide ", "guardrails.pii.action: Input should be 'mask' or"),
        ("    model: guard", "    model: gaurd", "guardrails.judge.model: unknown model 'gaurd'"),
        (
            "embedding_model: minilm ",
            "embedding_model: mini ",
            "cache.semantic.embedding_model: unknown model 'mini' (did you mean 'minilm'?), line 21",
        ),
        ("threshold: 0.95", "threshold: 1.5", "cache.semantic.threshold: Input should be less"),
        ("cache: true", "cache: sometimes", "models.chat.cache"),
        (
            "patterns: ['(?i)internal[- ]only']",
            "patterns: ['(unclosed']",
            "guardrails.no-secrets.patterns: Value error, '(unclosed' is not a valid regular",
        ),
        ("restore_in_response: true", "restore: true", "guardrails.pii.restore: unknown key"),
    ],
)
def test_mistakes_name_their_yaml_path(old: str, new: str, expected: str) -> None:
    assert old in ISSUE_SHAPE
    found = problems(ISSUE_SHAPE.replace(old, new, 1))
    assert any(p.startswith(expected) for p in found), found


def test_a_redis_cache_needs_redis_url() -> None:
    text = ISSUE_SHAPE.replace("redis_url: redis://127.0.0.1:6379/0\n", "")
    assert problems(text) == ["cache.backend: the redis backend needs 'redis_url', line 17"]


def test_a_keys_guardrails_are_checked_too() -> None:
    text = ISSUE_SHAPE.replace(
        "models:\n",
        "auth:\n  keys:\n    - {name: a, key_sha256: '"
        + "0" * 64
        + "', guardrails: {input: [pi]}}\n"
        "models:\n",
    )
    assert problems(text) == [
        "auth.keys[0].guardrails.input[0]: unknown guardrail 'pi' (did you mean 'pii'?), line 25"
    ]


def test_check_shows_each_models_guardrails_and_cache() -> None:
    config = parse_config(ISSUE_SHAPE, env={})
    table = routing_table(config)
    assert "    guardrails: input=pii,no-secrets output=pii" in table
    assert "    cache: deterministic" in table and "    cache: always" in table
