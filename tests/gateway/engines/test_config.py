"""The engines section of models.yaml as the issue writes it, and the router targets it makes."""

from __future__ import annotations

import pytest

from adapters.errors import ConfigError
from gateway.cli import main as cli_main
from gateway.config.fleet import merged_prefix
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


REPLICAS_YAML = """\
engines:
  llama3-local:
    model: meta-llama/Llama-3.2-1B-Instruct
    family: llama3
    replicas: 2
    devices: ["0", "1"]          # one entry per replica
models:
  llama3:
    strategy: prefix
    targets:
      - {engine: llama3-local, max_concurrency: 16}
"""


async def test_an_engine_of_two_replicas_is_two_targets_with_their_own_devices() -> None:
    config = parse_config(REPLICAS_YAML, env={})
    engines = LocalEngines(config, make_logger())
    try:
        assert list(engines.adapters) == ["llama3-local#0", "llama3-local#1"]
        first, second = (engines.adapters[n].handle for n in engines.adapters)
        assert (first.engine, first.replica, second.replica) == ("llama3-local", 0, 1)
        assert first.port != second.port
        assert first.log_path.name == "llama3-local#0.log"
        router = build_router(config, {}, 0, TokenCounter(), engines)
        targets = router.models["llama3"].targets
        assert [t.name for t in targets] == ["engine/llama3-local#0", "engine/llama3-local#1"]
        # Health, admission limit and load are each replica's own.
        assert targets[0].health is not targets[1].health
        assert [t.health.max_concurrency for t in targets] == [16, 16]
        assert targets[0].load is not None and targets[0].load is not targets[1].load
        assert [t.adapter.handle.base_url for t in targets] == [  # type: ignore[attr-defined]
            first.base_url,
            second.base_url,
        ]
        rows = engines.rows()
        assert [(row[1], row[4]) for row in rows] == [
            ("llama3-local#0", first.base_url),
            ("llama3-local#1", second.base_url),
        ]
        ready = engines.snapshot()
        assert ready["llama3-local#1"]["engine"] == "llama3-local"
        assert ready["llama3-local#1"]["replica"] == 1
        assert ready["llama3-local#1"]["load"] is None  # not read yet
    finally:
        await engines.aclose()


async def test_replicas_of_a_fixed_port_take_the_ports_after_it() -> None:
    text = REPLICAS_YAML.replace("replicas: 2", "replicas: 3\n    port: 23456").replace(
        'devices: ["0", "1"]', 'devices: ["0", "1", "2"]'
    )
    engines = LocalEngines(parse_config(text, env={}), make_logger())
    try:
        assert [a.handle.port for a in engines.adapters.values()] == [23456, 23457, 23458]
    finally:
        await engines.aclose()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('devices: ["0", "1"]', 'devices: ["0"]'), "'devices' has 1 entries for 2 replica(s)"),
        (('devices: ["0", "1"]', 'devices: "0,1"'), "'devices' is one string for 2 replicas"),
        (("replicas: 2", "replicas: 0"), "engines.llama3-local.replicas"),
        (
            ('devices: ["0", "1"]', "cpu_threads_bind: [0-3, 4-7, 8-11]"),
            "'cpu_threads_bind' has 3 entries for 2 replica(s)",
        ),
        (("replicas: 2", "replicas: 2\n    port: 65535"), "above 65535"),
        (("strategy: prefix", "strategy: prefixes"), "models.llama3.strategy"),
    ],
)
def test_replica_settings_are_checked(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(REPLICAS_YAML.replace(*change), env={})
    assert message in str(info.value)


def test_prefix_knobs_default_from_routing_and_a_model_overrides_them_key_by_key() -> None:
    text = REPLICAS_YAML + (
        "    prefix: {load_margin: 2}\n"
        "routing:\n"
        "  prefix: {block_bytes: 128, max_blocks: 5000}\n"
        "  engine_load: {max_waiting: 4}\n"
    )
    config = parse_config(text, env={})
    merged = merged_prefix(config.routing.prefix, config.models["llama3"].prefix)
    assert (merged.block_bytes, merged.max_blocks, merged.load_margin) == (128, 5000, 2)
    assert config.routing.engine_load.max_waiting == 4
