"""deploy/k8s: every overlay builds with `kubectl kustomize`, every object is
valid against the Kubernetes schema, and the objects fit together (probes,
drain, selectors, the engines' flags, the GPU requests)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from gateway.config.loader import load_config
from gateway.engines.presets import SERVER_MODULE, build_command
from gateway.render import images
from gateway.render.source import service_name
from tests.deploy.conftest import K8S, KUBERNETES_VERSION, OVERLAYS, find, kustomize
from tests.helpers import ROOT

CONFIG = load_config(ROOT / "models.yaml")
# Kinds that come from CRDs: no schema in kubernetes-validate, checked below by hand.
CUSTOM_KINDS = {"ServiceMonitor", "RayCluster"}


def schema_problems(objects: list[dict[str, Any]]) -> list[str]:
    problems = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            problems.append(f"{obj['kind']}/{obj['metadata']['name']} {where}: {exc.message}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_kubernetes(
    overlay: str, overlays: dict[str, list[dict[str, Any]]]
) -> None:
    objects = overlays[overlay]
    assert {o["kind"] for o in objects} >= {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "PersistentVolumeClaim",
        "NetworkPolicy",
    }
    assert schema_problems(objects) == []
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {
        "vllm-gateway"
    }


def test_schema_check_catches_a_bad_object(overlays: dict[str, list[dict[str, Any]]]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(find(overlays["gpu"], "Deployment", "gateway")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert len(schema_problems([broken])) == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_rolls_and_drains(overlay: str, overlays: dict[str, list[dict[str, Any]]]) -> None:
    objects = overlays[overlay]
    gateway = find(objects, "Deployment", "gateway")
    pod = gateway["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert gateway["spec"]["replicas"] >= 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["requests"]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    drain = math.ceil(CONFIG.server.drain_seconds)
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain
    # The config the pods mount is the rendered models.yaml, under its generated name.
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    mounted = next(v for v in pod["volumes"] if v["name"] == "config")["configMap"]["name"]
    assert mounted == config_map["metadata"]["name"]
    assert config_map["data"]["models.yaml"] == (K8S / "base" / "models.yaml").read_text()

    labels = gateway["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        spec = find(objects, kind, "gateway")["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        assert selector.items() <= labels.items(), kind
    autoscaler = find(objects, "HorizontalPodAutoscaler", "gateway")["spec"]
    assert autoscaler["scaleTargetRef"]["name"] == "gateway"
    assert autoscaler["minReplicas"] >= 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_engine_service_per_engine(
    overlay: str, overlays: dict[str, list[dict[str, Any]]]
) -> None:
    objects = overlays[overlay]
    rendered_config = yaml.safe_load((K8S / "base" / "models.yaml").read_text())
    for name, engine in CONFIG.engines.items():
        service = service_name(name)
        workload = find(objects, "Deployment", service)
        container = workload["spec"]["template"]["spec"]["containers"][0]
        # The flags the gateway itself would start this engine with.
        argv = build_command(engine, port=8000, python="python3").argv
        expected = argv[argv.index(SERVER_MODULE) + 1 :]
        expected[expected.index("--host") + 1] = "0.0.0.0"
        assert container["args"] == expected
        assert container["readinessProbe"]["httpGet"]["path"] == "/health"
        selector = find(objects, "Service", service)["spec"]["selector"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
        claim = next(
            v
            for v in workload["spec"]["template"]["spec"]["volumes"]
            if "persistentVolumeClaim" in v
        )["persistentVolumeClaim"]["claimName"]
        find(objects, "PersistentVolumeClaim", claim)
        base_url = rendered_config["providers"][name]["base_url"]
        assert base_url == f"http://{service}:8000/v1"
        limits = container["resources"]["limits"]
        if overlay == "gpu":
            assert container["command"] == list(images.GPU_ENGINE_PROGRAM)
            assert container["image"] == images.VLLM_IMAGE
            assert limits["nvidia.com/gpu"] == len((engine.devices or "0").split(","))
        else:
            assert container["command"] == list(images.CPU_ENGINE_PROGRAM)
            assert container["image"] == images.CPU_IMAGE
            assert "nvidia.com/gpu" not in limits
            assert {"name": "VLLM_CPU_KVCACHE_SPACE", "value": "4"} in container["env"]


def test_only_the_gateway_reaches_engines_and_redis(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    objects = overlays["gpu"]
    gateway_labels = find(objects, "Deployment", "gateway")["spec"]["template"]["metadata"]
    for policy_name, workload in (("engines", service_name("qwen2-local")), ("redis", "redis")):
        policy = find(objects, "NetworkPolicy", policy_name)["spec"]
        pod_labels = find(objects, "Deployment", workload)["spec"]["template"]["metadata"]
        assert policy["podSelector"]["matchLabels"].items() <= pod_labels["labels"].items()
        peers = policy["ingress"][0]["from"]
        assert peers == [{"podSelector": {"matchLabels": gateway_labels["labels"]}}]


def test_servicemonitor_component_scrapes_the_gateway(tmp_path: Path) -> None:
    with_monitor = tmp_path / "with-monitor"
    with_monitor.mkdir()
    (with_monitor / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes relative paths only
                "resources": [os.path.relpath(K8S / "overlays" / "gpu", with_monitor)],
                "components": [
                    os.path.relpath(K8S / "components" / "servicemonitor", with_monitor)
                ],
            }
        )
    )
    objects = kustomize(with_monitor)
    monitor = find(objects, "ServiceMonitor", "gateway")
    service = find(objects, "Service", "gateway")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert schema_problems([o for o in objects if o["kind"] not in CUSTOM_KINDS]) == []


def test_kuberay_example_fits_its_gpus() -> None:
    docs = list(
        yaml.safe_load_all((K8S / "examples" / "kuberay-pipeline-parallel.yaml").read_text())
    )
    cluster = find(docs, "RayCluster", "llama3-70b")
    service = find(docs, "Service", "engine-llama3-70b")
    assert schema_problems([service]) == []
    head = cluster["spec"]["headGroupSpec"]["template"]
    workers = cluster["spec"]["workerGroupSpecs"]
    # The pod templates inside the custom resource are ordinary pods.
    pods = [head, *(group["template"] for group in workers)]
    as_pods = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"pod-{i}"}, "spec": p["spec"]}
        for i, p in enumerate(pods)
    ]
    assert schema_problems(as_pods) == []

    script = head["spec"]["containers"][0]["args"][0]
    words = script.split()
    tensor = int(words[words.index("--tensor-parallel-size") + 1])
    pipeline = int(words[words.index("--pipeline-parallel-size") + 1])
    assert words[words.index("--distributed-executor-backend") + 1] == "ray"
    gpus = head["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] + sum(
        g["replicas"]
        * g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
        for g in workers
    )
    assert gpus == tensor * pipeline
    assert f"< {tensor * pipeline})" in script  # vLLM waits for all of them
    assert cluster["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    assert service["spec"]["selector"] == {
        "ray.io/cluster": "llama3-70b",
        "ray.io/node-type": "head",
    }
