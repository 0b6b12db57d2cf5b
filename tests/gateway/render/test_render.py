"""`vllm-gateway render`: one models.yaml becomes compose and Kubernetes
files whose secrets stay ${VAR} references, whose engines run the flags the
gateway would use, and whose gateway config reaches them by service name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.errors import ConfigError
from gateway.config.loader import parse_config
from gateway.render import render
from gateway.render.files import MARK
from tests.helpers import ROOT

SECRET_VALUE = "sk-live-never-in-a-file-7f3a"


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def rendered(tmp_path: Path, kind: str, config: dict[str, Any]) -> dict[str, str]:
    out = tmp_path / kind
    written, _ = render(kind, write(tmp_path, config), out)  # type: ignore[arg-type]
    return {path.relative_to(out).as_posix(): path.read_text() for path in written}


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind]
    return found


SECRETS_CONFIG: dict[str, Any] = {
    "server": {"drain_seconds": 42},
    "providers": {
        "openai": {
            "kind": "openai",
            "base_url": "https://api.openai.com/v1",
            "api_key": "${OPENAI_API_KEY}",
        },
        "extra": {
            "kind": "openai",
            "base_url": "${EXTRA_URL:-https://example.test/v1}",
        },
    },
    "engines": {
        "big": {
            "model": "org/Big-Model",
            "family": "deepseek-r1",
            "tensor_parallel_size": 4,
            "env": {"HF_TOKEN": "${HUB_TOKEN}", "VLLM_LOGGING_LEVEL": "DEBUG"},
        },
        "small": {"model": "org/small", "cpu_kvcache_space_gib": 2},
    },
    "models": {
        "big": {
            "targets": [
                {"engine": "big", "weight": 3},
                {"provider": "openai", "model": "gpt-4o-mini", "weight": 1},
            ]
        },
        "small": {"targets": [{"engine": "small"}], "fallbacks": ["big"]},
    },
}


def test_secrets_stay_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_VALUE)
    monkeypatch.setenv("HUB_TOKEN", SECRET_VALUE)
    files = {**rendered(tmp_path, "compose", SECRETS_CONFIG)}
    files.update({f"k8s/{k}": v for k, v in rendered(tmp_path, "k8s", SECRETS_CONFIG).items()})
    assert not [name for name, text in files.items() if SECRET_VALUE in text]

    gateway_config = yaml.safe_load(files["gateway/models.yaml"])
    assert gateway_config["providers"]["openai"]["api_key"] == "${OPENAI_API_KEY}"
    compose = yaml.safe_load(files["compose.yaml"])["services"]
    assert compose["gateway"]["environment"] == {
        "EXTRA_URL": "${EXTRA_URL:-https://example.test/v1}",
        "OPENAI_API_KEY": "${OPENAI_API_KEY:?set OPENAI_API_KEY for vllm-gateway}",
    }
    assert (
        compose["engine-big"]["environment"]["HF_TOKEN"]
        == "${HUB_TOKEN:?set HUB_TOKEN for vllm-gateway}"
    )
    assert compose["engine-big"]["environment"]["VLLM_LOGGING_LEVEL"] == "DEBUG"

    gateway = by_kind(documents(files["k8s/base/gateway.yaml"]), "Deployment")
    env = gateway["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env} == {
        "EXTRA_URL": {"name": "vllm-gateway-secrets", "key": "EXTRA_URL", "optional": True},
        "OPENAI_API_KEY": {
            "name": "vllm-gateway-secrets",
            "key": "OPENAI_API_KEY",
            "optional": False,
        },
    }
    engine = by_kind(documents(files["k8s/base/engine-big.yaml"]), "Deployment")
    engine_env = engine["spec"]["template"]["spec"]["containers"][0]["env"]
    token = next(e for e in engine_env if e["name"] == "HF_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["key"] == "HUB_TOKEN"


def test_the_rendered_gateway_config_routes_to_engine_services(tmp_path: Path) -> None:
    files = rendered(tmp_path, "compose", SECRETS_CONFIG)
    config = parse_config(
        files["gateway/models.yaml"], env={"OPENAI_API_KEY": "x", "HUB_TOKEN": "x"}
    )
    assert config.engines == {}
    assert config.providers["big"].base_url == "http://engine-big:8000/v1"
    big = config.models["big"]
    assert [(t.provider, t.model, t.weight) for t in big.targets] == [
        ("big", "org/Big-Model", 3),
        ("openai", "gpt-4o-mini", 1),
    ]
    # The family's sampling defaults, applied by the local engine adapter, are explicit now.
    assert big.targets[0].sampling == {"temperature": 0.6, "top_p": 0.95}
    assert config.models["small"].fallbacks == ["big"]
    assert (config.server.host, config.server.port) == ("0.0.0.0", 8000)


def test_gpus_cpu_engines_and_drain(tmp_path: Path) -> None:
    compose = yaml.safe_load(rendered(tmp_path, "compose", SECRETS_CONFIG)["compose.yaml"])
    big, small = compose["services"]["engine-big"], compose["services"]["engine-small"]
    assert big["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "capabilities": ["gpu"], "count": 4}
    ]
    assert "--tensor-parallel-size" in big["command"] and "4" in big["command"]
    assert big["entrypoint"] == ["vllm", "serve"]
    assert "deploy" not in small
    assert small["entrypoint"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert small["environment"]["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert compose["services"]["gateway"]["stop_grace_period"] == "47s"  # 42 s drain + margin

    k8s = rendered(tmp_path, "k8s", SECRETS_CONFIG)
    patch = documents(k8s["overlays/gpu/engine-big.yaml"])[0]
    container = patch["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 4}
    gateway = by_kind(documents(k8s["base/gateway.yaml"]), "Deployment")
    assert gateway["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 52


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ({"model": "${MODEL_PATH}"}, "engines.e: '${MODEL_PATH}' refers to the environment"),
        ({"model": "m", "env": {"TOKEN": "Bearer ${T}"}}, "engines.e.env.TOKEN: to render"),
    ],
)
def test_engine_settings_must_be_literal(
    tmp_path: Path, engine: dict[str, Any], message: str
) -> None:
    config = {"engines": {"e": engine}, "models": {"m": {"targets": [{"engine": "e"}]}}}
    with pytest.raises(ConfigError) as refused:
        render("k8s", write(tmp_path, config), tmp_path / "out")
    assert message in str(refused.value)


def test_engines_whose_service_names_collide_are_refused(tmp_path: Path) -> None:
    engines = {"a_b": {"model": "m"}, "a-b": {"model": "m"}}
    config = {"engines": engines, "models": {"m": {"targets": [{"engine": "a_b"}]}}}
    with pytest.raises(ConfigError) as refused:
        render("compose", write(tmp_path, config), tmp_path / "out")
    assert "its service name 'engine-a-b' is also that of engine 'a_b'" in str(refused.value)


def test_rendering_again_removes_what_it_no_longer_writes(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    render("k8s", write(tmp_path, SECRETS_CONFIG), out)
    assert (out / "base" / "engine-small.yaml").exists()
    (out / "README.md").write_text("kept: not generated\n")
    fewer = {**SECRETS_CONFIG, "engines": {"big": SECRETS_CONFIG["engines"]["big"]}}
    fewer["models"] = {"big": SECRETS_CONFIG["models"]["big"]}
    render("k8s", write(tmp_path, fewer), out)
    assert not (out / "base" / "engine-small.yaml").exists()
    assert not (out / "overlays" / "gpu" / "engine-small.yaml").exists()
    assert (out / "README.md").read_text() == "kept: not generated\n"
    assert all(p.read_text().startswith(MARK) for p in out.rglob("*.yaml"))


def test_command_line(tmp_path: Path) -> None:
    local = {
        "engines": {"mine": {"model": str(tmp_path)}},
        "models": {"mine": {"targets": [{"engine": "mine"}]}},
    }
    command = [sys.executable, "-m", "gateway", "render", "compose"]
    ok = subprocess.run(
        [*command, str(write(tmp_path, local)), "-o", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert str(tmp_path / "out" / "compose.yaml") in ok.stdout.splitlines()
    assert f"warning: engines.mine.model is a local path ({tmp_path})" in ok.stderr

    bad = write(tmp_path, {"models": {"m": {"targets": [{"engine": "nope"}]}}})
    refused = subprocess.run(
        [*command, str(bad), "-o", str(tmp_path / "bad")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "unknown engine 'nope'" in refused.stderr
    assert not (tmp_path / "bad").exists()


def test_an_engine_of_several_replicas_is_one_service_run_that_many_times(tmp_path: Path) -> None:
    config = {
        "engines": {"llama": {"model": "org/llama", "replicas": 3, "devices": ["0", "1", "2"]}},
        "models": {"llama": {"targets": [{"engine": "llama"}]}},
    }
    compose = yaml.safe_load(rendered(tmp_path, "compose", config)["compose.yaml"])
    deploy = compose["services"]["engine-llama"]["deploy"]
    assert deploy["replicas"] == 3
    # One GPU each, whichever is free: one service cannot pin a device per replica.
    assert deploy["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "capabilities": ["gpu"], "count": 1}
    ]
    k8s = rendered(tmp_path, "k8s", config)
    engine = by_kind(documents(k8s["base/engine-llama.yaml"]), "Deployment")
    assert engine["spec"]["replicas"] == 3
    _, warnings = render("compose", write(tmp_path, config), tmp_path / "again")
    assert any("engines.llama: its 3 replicas are one service" in w for w in warnings)
