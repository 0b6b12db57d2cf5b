"""Engines turned into providers: what --workers N and render run instead of local engines."""

from __future__ import annotations

import pytest

from adapters.errors import ConfigError
from gateway.config.loader import parse_config
from gateway.engines.remote import engines_as_providers

CONFIG = """\
engines:
  r1: {model: /models/r1, family: deepseek-r1, max_model_len: 2048, served_name: r1-distill}
providers:
  remote: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
models:
  think:
    targets:
      - {engine: r1, weight: 3, sampling: {top_p: 0.5}}
      - {provider: remote, model: r, tier: 2}
"""


def test_engines_become_openai_providers_with_the_same_behaviour() -> None:
    config = engines_as_providers(parse_config(CONFIG, env={}), {"r1": "http://127.0.0.1:8101/v1"})
    assert config.engines == {}
    provider = config.providers["r1"]
    assert provider.kind == "openai" and provider.base_url == "http://127.0.0.1:8101/v1"
    # vLLM's `reasoning` keeps the name clients get from a local engine.
    assert provider.rename_reasoning is True
    local, remote = config.models["think"].targets
    assert (local.provider, local.model, local.weight) == ("r1", "r1-distill", 3)
    assert local.name == "engine/r1"  # as X-Gateway-Target and metrics call it locally
    # The family preset's sampling defaults travel with it; the entry's own win.
    assert local.sampling == {"temperature": 0.6, "top_p": 0.5}
    assert remote.provider == "remote" and remote.tier == 2
    # The engine's window becomes the model's, for context-window fallbacks.
    assert config.models["think"].max_model_len == 2048


def test_an_engine_and_a_provider_of_one_name_are_refused() -> None:
    clash = CONFIG.replace("remote:", "r1:", 1).replace("provider: remote", "provider: r1")
    with pytest.raises(ConfigError, match="r1"):
        engines_as_providers(parse_config(clash, env={}), {"r1": "http://x/v1"})


def test_each_replica_becomes_a_provider_and_a_target_of_its_own() -> None:
    text = CONFIG.replace("served_name: r1-distill}", "served_name: r1-distill, replicas: 2}")
    urls = {"r1#0": "http://127.0.0.1:8101/v1", "r1#1": "http://127.0.0.1:8102/v1"}
    config = engines_as_providers(parse_config(text, env={}), urls)
    assert config.providers["r1#1"].base_url == "http://127.0.0.1:8102/v1"
    first, second, remote = config.models["think"].targets
    assert [(t.provider, t.name, t.weight) for t in (first, second)] == [
        ("r1#0", "engine/r1#0", 3),
        ("r1#1", "engine/r1#1", 3),
    ]
    assert first.model == second.model == "r1-distill"
    assert remote.provider == "remote"
