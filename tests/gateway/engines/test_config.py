"""The engines section of models.yaml as the issue writes it, and the router targets it makes."""

from __future__ import annotations

import pytest

from adapters.errors import ConfigError
from gateway.cli import main as cli_main
from gateway.config.loader import parse_config
from gateway.engines.runtime import LocalEngines, render_table
from gateway.observability.logs import make_logger
from gateway.routing.build import build_router
from gateway.tokens import TokenCounter
from tests.helpers import ROOT

ISSUE_YAML = """\
engines:
  qwen2-local:
    model: Qwen/Qwen2.5-0.5B-Instruct     # hub id or local path
    family: qwen2                         # deepseek-r1 | deepseek-v3 | llama3 | qwen2
    max_model_len: 4096
models:
  qwen2:
    targets:
      - {engine: qwen2-local}
"""


def test_the_issue_yaml_loads_as_written() -> None:
    config = parse_config(ISSUE_YAML, env={})
    engine = config.engines["qwen2-local"]
    assert engine.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert engine.family == "qwen2"
    assert engine.max_model_len == 4096
    assert config.models["qwen2"].targets[0].engine == "qwen2-local"


def test_an_unknown_engine_key_is_an_error_naming_it() -> None:
    text = ISSUE_YAML.replace("max_model_len: 4096", "max_model_length: 4096")
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    assert "engines.qwen2-local.max_model_length" in str(info.value)
    assert "max_model_len" in str(info.value)  # the near-miss hint


def test_an_unknown_family_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(ISSUE_YAML.replace("family: qwen2", "family: qwen3"), env={})
    assert "engines.qwen2-local.family" in str(info.value)


def test_a_target_naming_a_missing_engine_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(ISSUE_YAML.replace("{engine: qwen2-local}", "{engine: qwen-local}"), env={})
    assert "unknown engine 'qwen-local'" in str(info.value)


async def test_an_engine_target_routes_to_the_engine_url_with_preset_defaults() -> None:
    config = parse_config(ISSUE_YAML.replace("family: qwen2", "family: deepseek-r1"), env={})
    engines = LocalEngines(config, make_logger())
    try:
        router = build_router(config, {}, 0, TokenCounter(), engines)
        (target,) = router.models["qwen2"].targets
        handle = engines.adapters["qwen2-local"].handle
        assert target.name == "engine/qwen2-local"
        assert target.upstream_model == "Qwen/Qwen2.5-0.5B-Instruct"
        assert handle.base_url == f"http://127.0.0.1:{handle.port}/v1"
        assert target.defaults["temperature"] == 0.6
        assert target.context_window == 4096
        # Not started: the engine is not ready, so the router must not use it.
        assert target.available() is False
        prepared = target.prepare({"model": "qwen2", "messages": [], "temperature": 0.1})
        assert prepared["temperature"] == 0.1 and prepared["model"] == target.upstream_model
    finally:
        await engines.aclose()


async def test_a_rebuilt_router_replaces_its_ready_callbacks() -> None:
    config = parse_config(ISSUE_YAML, env={})
    engines = LocalEngines(config, make_logger())
    try:
        handle = engines.adapters["qwen2-local"].handle
        first = build_router(config, {}, 0, TokenCounter(), engines)
        (target,) = first.models["qwen2"].targets
        # A reload builds the router again, keeping each target's health.
        build_router(config, {}, 0, TokenCounter(), engines, None, {target.name: target.health})
        assert list(handle.on_ready) == ["engine/qwen2-local"]
        target.health.checked_healthy = False  # checks failed while it loaded
        handle.on_ready["engine/qwen2-local"]()
        assert target.health.checked_healthy is None
    finally:
        await engines.aclose()


async def test_every_engine_gets_its_own_port() -> None:
    text = ISSUE_YAML.replace("models:", "  other:\n    model: /tmp/x\n    port: 23456\nmodels:")
    config = parse_config(text, env={})
    engines = LocalEngines(config, make_logger())
    try:
        ports = {name: a.handle.port for name, a in engines.adapters.items()}
        assert ports["other"] == 23456
        assert ports["qwen2-local"] != 23456
    finally:
        await engines.aclose()


def test_the_repository_models_yaml_passes_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["check", str(ROOT / "models.yaml")]) == 0
    out = capsys.readouterr().out
    for engine in ("deepseek-r1-local", "llama3-local", "qwen2-local"):
        assert f"engine {engine}" in out


def test_the_startup_table_lines_up_its_columns() -> None:
    table = render_table(("MODEL", "STATE"), [("tiny-llama3", "ready"), ("q", "failed")])
    lines = table.splitlines()
    assert lines[0] == "MODEL        STATE"
    assert lines[1] == "tiny-llama3  ready"
    assert lines[2] == "q            failed"
