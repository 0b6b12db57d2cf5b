"""``vllm-gateway render compose``: a Docker Compose project from models.yaml.

Services: the gateway (its config rewritten to reach each engine by service
name), one ``vllm serve`` container per engine with its own GPU reservation,
Redis for limits shared by replicas, Prometheus scraping the gateway,
Grafana provisioned with deploy/grafana's datasource and dashboard, and with
a ``knowledge:`` section, Milvus standalone (gateway.render.milvus).
"""

from __future__ import annotations

from typing import Any

from gateway.render import images, milvus
from gateway.render.files import dump, header
from gateway.render.source import (
    ENGINE_PORT,
    GATEWAY_PORT,
    MODEL_CACHE,
    Deployment,
    EngineService,
    SecretEnv,
)

CONFIG_DIR = "/etc/vllm-gateway"
CONFIG_IN_CONTAINER = f"{CONFIG_DIR}/models.yaml"
# Grafana's provisioning files are deploy/grafana's own; a project rendered
# elsewhere than deploy/compose points this variable at that folder.
GRAFANA_DIR = "${VLLM_GATEWAY_GRAFANA_DIR:-../grafana}"
ENGINE_HEALTH = (
    f"import urllib.request as r; r.urlopen('http://127.0.0.1:{ENGINE_PORT}/health', timeout=5)"
)


def render_compose(deployment: Deployment) -> dict[str, str]:
    """Relative path -> file text."""
    top = header("compose", deployment.source)
    services: dict[str, Any] = {"gateway": _gateway(deployment)}
    for engine in deployment.engines:
        services[engine.service] = _engine(engine)
    services.update(redis=_redis(), prometheus=_prometheus(), grafana=_grafana())
    volumes: dict[str, Any] = {"model-cache": {}, "prometheus-data": {}, "grafana-data": {}}
    config, with_milvus = milvus.with_knowledge(deployment.gateway_config)
    files = {"prometheus.yml": dump(top, _scrape_config())}
    if config is not deployment.gateway_config:  # knowledge: files on a volume, Milvus beside
        services["gateway"]["volumes"].append(f"knowledge-files:{milvus.FILES_DIR}")
        volumes["knowledge-files"] = {}
    if with_milvus:
        services["milvus"] = milvus.compose_service()
        services["gateway"]["depends_on"]["milvus"] = {"condition": "service_healthy"}
        volumes["milvus-data"] = {}
        files["milvus/embedEtcd.yaml"] = dump(top, milvus.EMBED_ETCD)
    project = {"name": "vllm-gateway", "services": services, "volumes": volumes}
    return {
        "compose.yaml": dump(top, project),
        "gateway/models.yaml": dump(top, config),
        **files,
    }


def secret_environment(secrets: list[SecretEnv]) -> dict[str, str]:
    """Secrets come from the shell (or an .env file) of ``docker compose up``;
    one without a default stops ``up`` with a message naming it."""
    return {
        secret.name: (
            f"${{{secret.key}:?set {secret.key} for vllm-gateway}}"
            if secret.default is None
            else f"${{{secret.key}:-{secret.default}}}"
        )
        for secret in secrets
    }


def _gateway(deployment: Deployment) -> dict[str, Any]:
    service: dict[str, Any] = {
        "image": f"${{VLLM_GATEWAY_IMAGE:-{images.GATEWAY_IMAGE}}}",
        "command": [
            "serve",
            "--config",
            CONFIG_IN_CONTAINER,
            "--host",
            "0.0.0.0",
            "--port",
            str(GATEWAY_PORT),  # every interface of the container
        ],
        "ports": [f"{deployment.host_port}:{GATEWAY_PORT}"],
        # The folder, not the file: an editor that saves by renaming would leave
        # a single-file mount on the old version, and a reload would not see it.
        "volumes": [f"./gateway:{CONFIG_DIR}:ro"],
        "depends_on": {
            "redis": {"condition": "service_started"},
            **{e.service: {"condition": "service_started"} for e in deployment.engines},
        },
        # SIGTERM, then the drain period for in-flight requests.
        "stop_grace_period": f"{deployment.grace_seconds(0)}s",
        "restart": "unless-stopped",
    }
    if deployment.gateway_secrets:
        service["environment"] = secret_environment(deployment.gateway_secrets)
    return service


def _engine(engine: EngineService) -> dict[str, Any]:
    program = images.CPU_ENGINE_PROGRAM if engine.on_cpu else images.GPU_ENGINE_PROGRAM
    service: dict[str, Any] = {
        "image": images.CPU_IMAGE if engine.on_cpu else images.VLLM_IMAGE,
        "entrypoint": list(program),
        "command": engine.args,
        "environment": {
            "HF_HOME": f"{MODEL_CACHE}/huggingface",
            **engine.env,
            **secret_environment(engine.secret_env),
        },
        "volumes": [f"model-cache:{MODEL_CACHE}"],
        # vLLM's workers share tensors through /dev/shm.
        "ipc": "host",
        "healthcheck": {
            "test": ["CMD", "python3", "-c", ENGINE_HEALTH],
            "interval": "15s",
            "timeout": "10s",
            "retries": 3,
            "start_period": f"{int(engine.config.startup_timeout)}s",
        },
        "restart": "unless-stopped",
    }
    deploy: dict[str, Any] = {"replicas": engine.replicas} if engine.replicas > 1 else {}
    if not engine.on_cpu:
        device: dict[str, Any] = {"driver": "nvidia", "capabilities": ["gpu"]}
        if engine.device_ids is not None:
            device["device_ids"] = engine.device_ids
        else:
            device["count"] = engine.gpus
        deploy["resources"] = {"reservations": {"devices": [device]}}
    if deploy:
        service["deploy"] = deploy
    return service


def _redis() -> dict[str, Any]:
    return {
        "image": images.REDIS_IMAGE,
        # Rate-limit windows only: nothing to persist.
        "command": ["redis-server", "--save", "", "--appendonly", "no"],
        "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "10s"},
        "restart": "unless-stopped",
    }


def _prometheus() -> dict[str, Any]:
    return {
        "image": images.PROMETHEUS_IMAGE,
        "volumes": [
            "./prometheus.yml:/etc/prometheus/prometheus.yml:ro",
            "prometheus-data:/prometheus",
        ],
        "ports": ["9090:9090"],
        "restart": "unless-stopped",
    }


def _grafana() -> dict[str, Any]:
    return {
        "image": images.GRAFANA_IMAGE,
        "volumes": [
            f"{GRAFANA_DIR}/provisioning:/etc/grafana/provisioning:ro",
            f"{GRAFANA_DIR}/dashboards:/var/lib/grafana/dashboards:ro",
            "grafana-data:/var/lib/grafana",
        ],
        "ports": ["3000:3000"],
        "depends_on": {"prometheus": {"condition": "service_started"}},
        "restart": "unless-stopped",
    }


def _scrape_config() -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml's job, aimed at the gateway service."""
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "scrape_configs": [
            {
                "job_name": "vllm-gateway",
                "metrics_path": "/metrics",
                "scrape_timeout": "10s",
                "static_configs": [
                    {"targets": [f"gateway:{GATEWAY_PORT}"], "labels": {"service": "vllm-gateway"}}
                ],
            }
        ],
    }
