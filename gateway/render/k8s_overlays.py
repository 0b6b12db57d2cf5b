"""The kustomize overlays of ``render k8s``, and the ServiceMonitor component.

- ``overlays/gpu``: each engine asks for ``nvidia.com/gpu`` (its ``devices``
  count, else tensor x pipeline parallel size) and tolerates GPU node taints.
- ``overlays/cpu``: engines run the vllm-cpu image (deploy/docker/Dockerfile.cpu)
  with vLLM's CPU settings, no GPU.
- ``components/servicemonitor``: for clusters with the Prometheus Operator
  (the pods also carry prometheus.io scrape annotations).
"""

from __future__ import annotations

from typing import Any

from gateway.render import images
from gateway.render.files import dump
from gateway.render.k8s_parts import APP, labels, metadata, pod_security
from gateway.render.source import Deployment, EngineService

GPU_RESOURCE = "nvidia.com/gpu"
# VLLM_CPU_KVCACHE_SPACE (GiB) for an engine whose models.yaml entry sets none:
# without it a CPU engine reserves a large share of the node's memory.
DEFAULT_CPU_KVCACHE_GIB = "4"


def render_overlays(deployment: Deployment, top: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for overlay, patch in (("gpu", _gpu_patch), ("cpu", _cpu_patch)):
        patches = {f"{engine.service}.yaml": patch(engine) for engine in deployment.engines}
        kustomization: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": APP,
            "resources": ["../../base"],
        }
        if overlay == "cpu":
            name, tag = images.CPU_IMAGE.split(":")
            vllm = images.VLLM_IMAGE.split(":")[0]
            kustomization["images"] = [{"name": vllm, "newName": name, "newTag": tag}]
        if patches:
            kustomization["patches"] = [{"path": path} for path in patches]
        files[f"overlays/{overlay}/kustomization.yaml"] = dump(top, kustomization)
        files.update({f"overlays/{overlay}/{path}": dump(top, p) for path, p in patches.items()})
    component = {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "resources": ["servicemonitor.yaml"],
    }
    files["components/servicemonitor/kustomization.yaml"] = dump(top, component)
    files["components/servicemonitor/servicemonitor.yaml"] = dump(top, _service_monitor())
    return files


def _engine_patch(engine: EngineService, pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": engine.service},
        "spec": {"template": {"spec": pod}},
    }


def _gpu_patch(engine: EngineService) -> dict[str, Any]:
    container = {"name": "vllm", "resources": {"limits": {GPU_RESOURCE: engine.gpus}}}
    pod = {
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [container],
    }
    return _engine_patch(engine, pod)


def _cpu_patch(engine: EngineService) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "vllm",
        "command": list(images.CPU_ENGINE_PROGRAM),
        "resources": {
            "requests": {"cpu": "4", "memory": "16Gi"},
            "limits": {"cpu": "8", "memory": "32Gi"},
        },
    }
    if "VLLM_CPU_KVCACHE_SPACE" not in engine.env:
        container["env"] = [{"name": "VLLM_CPU_KVCACHE_SPACE", "value": DEFAULT_CPU_KVCACHE_GIB}]
    # The CPU image runs as the gateway's non-root user.
    return _engine_patch(engine, {"securityContext": pod_security(), "containers": [container]})


def _service_monitor() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        # Namespaced here too: the component may be added outside an overlay.
        "metadata": {**metadata("gateway"), "namespace": APP},
        "spec": {
            "selector": {"matchLabels": labels("gateway")},
            "endpoints": [
                {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
            ],
        },
    }
