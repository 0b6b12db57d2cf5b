"""deploy/compose: valid against the Compose Specification's JSON schema, and
wired together (engines on their GPUs, the gateway reaching them by service
name, Prometheus scraping the gateway, Grafana on deploy/grafana's files)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.config.loader import load_config, parse_config
from gateway.render.source import service_name
from tests.deploy.conftest import DEPLOY
from tests.helpers import ROOT

COMPOSE = DEPLOY / "compose"


def compose_schema() -> dict[str, Any]:
    # check-jsonschema ([test] extra) vendors the Compose Specification's schema.
    vendored = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    return dict(json.loads(vendored.read_text()))


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return dict(yaml.safe_load((COMPOSE / "compose.yaml").read_text()))


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(compose_schema())
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_matches_the_compose_specification(project: dict[str, Any]) -> None:
    assert schema_errors(project) == []
    broken = yaml.safe_load(yaml.safe_dump(project))
    broken["services"]["gateway"]["restart"] = ["always"]
    broken["services"]["redis"]["helthcheck"] = {}
    assert len(schema_errors(broken)) == 2


def test_engines_run_on_their_gpus_and_the_gateway_finds_them(project: dict[str, Any]) -> None:
    config = load_config(ROOT / "models.yaml")
    services = project["services"]
    gateway_config = parse_config((COMPOSE / "gateway" / "models.yaml").read_text(), env={})
    for name, engine in config.engines.items():
        service = services[service_name(name)]
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
        assert device["device_ids"] == (engine.devices or "").split(",")
        assert service["command"][:2] == ["--model", engine.model]
        assert gateway_config.providers[name].base_url == f"http://{service_name(name)}:8000/v1"
        assert service_name(name) in services["gateway"]["depends_on"]
    assert gateway_config.engines == {}
    # The gateway's --config is the rendered file, through a folder mount.
    command = services["gateway"]["command"]
    config_path = PurePosixPath(command[command.index("--config") + 1])
    source, target, mode = services["gateway"]["volumes"][0].split(":")
    assert (str(config_path.parent), mode) == (target, "ro")
    assert (COMPOSE / source / config_path.name).samefile(COMPOSE / "gateway" / "models.yaml")
    assert gateway_config.redis_url is not None
    assert gateway_config.redis_url.get_secret_value() == "redis://redis:6379/0"
    assert "redis" in services
    # Both deployments run the same gateway config.
    assert (COMPOSE / "gateway" / "models.yaml").read_text().splitlines()[1:] == (
        (DEPLOY / "k8s" / "base" / "models.yaml").read_text().splitlines()[1:]
    )


def test_prometheus_and_grafana_are_provisioned(project: dict[str, Any]) -> None:
    services = project["services"]
    scrape = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["gateway:8000"]
    # Grafana mounts deploy/grafana (the default of VLLM_GATEWAY_GRAFANA_DIR).
    mounts = [
        mount.replace("${VLLM_GATEWAY_GRAFANA_DIR:-../grafana}", "../grafana").split(":")
        for mount in services["grafana"]["volumes"]
    ]
    for source, _, _ in mounts[:2]:
        assert (COMPOSE / source).is_dir(), source
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert "prometheus" in services
    dashboards = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/vllm-gateway.yml").read_text()
    )
    assert dashboards["providers"][0]["options"]["path"] == mounts[1][1]
