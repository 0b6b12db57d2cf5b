"""models.yaml: the contract shapes load as written, and errors name path, line and near miss."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.errors import ConfigError
from gateway.config.loader import load_config, parse_config

CORE_SHAPE = """\
server: {host: 127.0.0.1, port: 8000}   # optional; CLI flags win
providers:
  deepseek:
    kind: openai                        # any OpenAI-compatible API
    base_url: https://api.deepseek.com/v1
    api_key: ${DEEPSEEK_API_KEY}
models:                                 # the public names clients ask for
  deepseek-chat:
    targets:
      - {provider: deepseek, model: deepseek-chat, weight: 1}
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=env or {})
    return caught.value.problems


def test_core_shape_loads_as_written() -> None:
    config = parse_config(CORE_SHAPE, env={"DEEPSEEK_API_KEY": "sk-live"})
    provider = config.providers["deepseek"]
    assert provider.kind == "openai" and provider.base_url == "https://api.deepseek.com/v1"
    assert provider.api_key is not None and provider.api_key.get_secret_value() == "sk-live"
    target = config.models["deepseek-chat"].targets[0]
    assert (target.provider, target.model, target.weight) == ("deepseek", "deepseek-chat", 1)
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8000)


def test_env_interpolation_with_default_and_embedded() -> None:
    text = CORE_SHAPE.replace("${DEEPSEEK_API_KEY}", "pre-${KEY_A}-${KEY_B:-fallback}")
    config = parse_config(text, env={"KEY_A": "aa"})
    key = config.providers["deepseek"].api_key
    assert key is not None and key.get_secret_value() == "pre-aa-fallback"


def test_missing_env_var_names_path_and_line() -> None:
    assert problems(CORE_SHAPE) == [
        "providers.deepseek.api_key: environment variable DEEPSEEK_API_KEY is not set, line 6"
    ]


def test_unknown_provider_suggests_near_miss() -> None:
    text = """\
providers:
  openai:
    kind: openai
    base_url: https://api.openai.com/v1
models:
  chat:
    targets:
      - {provider: opnai, model: gpt-4o}
"""
    assert problems(text) == [
        "models.chat.targets[0].provider: unknown provider 'opnai' (did you mean 'openai'?), line 8"
    ]


def test_unknown_key_and_kind_and_bad_value() -> None:
    text = """\
providers:
  up:
    kind: opnai
    base_url: http://x
  ok:
    kind: openai
    base_url: http://y
    timeuts: {connect: 1}
models:
  chat:
    targets:
      - {provider: ok, model: m, wieght: 2}
  other:
    targets: []
"""
    found = problems(text)
    kind = next(p for p in found if p.startswith("providers.up.kind: "))
    assert kind.startswith("providers.up.kind: unknown kind 'opnai' (did you mean 'openai'?)")
    assert kind.endswith(", line 3")
    assert "providers.ok.timeuts: unknown key 'timeuts' (did you mean 'timeouts'?), line 8" in found
    assert (
        "models.chat.targets[0].wieght: unknown key 'wieght' (did you mean 'weight'?), line 12"
        in found
    )
    assert any(
        p.startswith("models.other.targets: List should have at least 1 item") for p in found
    )


def test_target_needs_exactly_one_backend_and_fallbacks_must_exist() -> None:
    text = """\
providers:
  up: {kind: openai, base_url: http://x}
models:
  a:
    targets:
      - {provider: up}
"""
    assert "provider target needs 'model'" in problems(text)[0]
    text = """\
providers:
  up: {kind: openai, base_url: http://x}
models:
  chat:
    targets: [{provider: up, model: m}]
    fallbacks: [chta]
"""
    assert problems(text) == [
        "models.chat.fallbacks[0]: unknown model 'chta' (did you mean 'chat'?), line 6"
    ]


def test_not_yaml_and_not_a_mapping() -> None:
    assert problems("a: [b")[0].startswith("not valid YAML")
    assert problems("- a\n- b\n") == [
        "the top level must be a mapping (server, providers, models, ...)"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "nope.yaml")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_check_prints_routing_table_with_secrets_masked(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(CORE_SHAPE)
    result = run_cli(
        "check", str(path), env={**os.environ, "DEEPSEEK_API_KEY": "sk-very-secret-42"}
    )
    assert result.returncode == 0, result.stderr
    assert "sk-very-secret-42" not in result.stdout + result.stderr
    assert (
        "deepseek: kind=openai base_url=https://api.deepseek.com/v1 api_key=set (masked)"
        in result.stdout
    )
    assert "deepseek-chat (strategy=weighted)" in result.stdout
    assert "-> provider deepseek model deepseek-chat weight=1 tier=1" in result.stdout


def test_check_fails_with_the_problem_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(CORE_SHAPE)
    env = {k: v for k, v in os.environ.items() if k != "DEEPSEEK_API_KEY"}
    result = run_cli("check", str(path), env=env)
    assert result.returncode == 2
    assert (
        "providers.deepseek.api_key: environment variable DEEPSEEK_API_KEY is not set, line 6"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


CONNECTION_SHAPE = """\
routing:
  transport: aiohttp
  max_event_bytes: 1048576
providers:
  corp:
    kind: openai
    base_url: https://llm.corp.example/v1
    transport: lean
    keepalive_expiry: 3
    tls: {ca_bundle: /etc/corp-ca.pem, client_cert: /etc/gw.pem, client_key: /etc/gw.key}
    proxy: http://proxy.corp.example:3128
  plain:
    kind: openai
    base_url: http://10.0.0.2:8000/v1
models:
  m:
    targets: [{provider: corp, model: x}, {provider: plain, model: y}]
"""


def test_connection_settings_load_and_routing_gives_the_defaults() -> None:
    config = parse_config(CONNECTION_SHAPE, env={})
    corp, plain = config.provider("corp"), config.provider("plain")
    assert (corp.transport, corp.keepalive_expiry, corp.max_event_bytes) == ("lean", 3, 1048576)
    assert corp.tls.ca_bundle == "/etc/corp-ca.pem" and corp.tls.verify
    assert corp.proxy == "http://proxy.corp.example:3128"
    assert (plain.transport, plain.keepalive_expiry) == ("aiohttp", 4.0)
    assert plain.max_response_bytes == 64 * 1024 * 1024


def test_header_values_with_line_breaks_are_refused_at_load() -> None:
    shape = CORE_SHAPE.replace(
        "    api_key: ${DEEPSEEK_API_KEY}\n",
        '    headers: {X-Team: "a\\r\\nX-Injected: 1"}\n',
    )
    (problem,) = problems(shape)
    assert problem.startswith("providers.deepseek.headers:")
    assert "line break" in problem and problem.endswith("line 6")


def test_bad_proxy_and_tls_settings_name_their_path() -> None:
    shape = CONNECTION_SHAPE.replace("http://proxy.corp", "socks5://proxy.corp")
    assert problems(shape)[0].startswith("providers.corp.proxy:")
    shape = CONNECTION_SHAPE.replace("client_cert: /etc/gw.pem, ", "")
    assert problems(shape)[0].startswith("providers.corp.tls:")
