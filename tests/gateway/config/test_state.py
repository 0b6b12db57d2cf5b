"""The state: section: memory unless said otherwise; mistakes named with their line."""

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


def test_memory_by_default() -> None:
    state = parse_config(BASE, env={}).state
    assert state.backend == "memory" and state.ttl_days == 30
    assert state.max_items_per_conversation == 10_000 and state.ttl_seconds == 30 * 86_400


def test_the_issues_shape_loads() -> None:
    text = BASE + (
        "redis_url: redis://127.0.0.1:6379/0\n"
        "state:\n  backend: redis\n  ttl_days: 7\n  max_items_per_conversation: 500\n"
    )
    state = parse_config(text, env={}).state
    assert (state.backend, state.ttl_days, state.max_items_per_conversation) == ("redis", 7, 500)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("state: {backend: redis}", "state.backend: 'redis' needs redis_url"),
        ("state: {backend: postgres}", "state.backend"),
        ("state: {ttl_days: 0}", "state.ttl_days"),
        ("state: {max_items_per_conversation: -1}", "state.max_items_per_conversation"),
        ("state: {ttl: 3}", "state.ttl"),
    ],
)
def test_mistakes_are_named(section: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + section + "\n", env={})
    problems = "\n".join(caught.value.problems)
    assert expected in problems and "line 5" in problems
