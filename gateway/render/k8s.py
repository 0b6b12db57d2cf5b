"""``vllm-gateway render k8s``: a kustomize base from models.yaml, with a cpu
and a gpu overlay (gateway.render.k8s_overlays).

The base holds the gateway (Deployment with 2+ replicas behind a
PodDisruptionBudget and a HorizontalPodAutoscaler, its Service, its
models.yaml in a ConfigMap, secrets from the ``vllm-gateway-secrets``
Secret), Redis, and one Deployment + Service + model-cache PVC per engine
running ``vllm serve`` with the flags the gateway itself would use; with a
``knowledge:`` section, Milvus standalone and the gateway's files claim
(gateway.render.milvus).
"""

from __future__ import annotations

import math
from typing import Any

from gateway.render import images, milvus
from gateway.render.files import dump, header
from gateway.render.k8s_overlays import render_overlays
from gateway.render.k8s_parts import (
    APP,
    annotated,
    engine_pod_security,
    engine_security,
    hardened,
    http_probe,
    labels,
    metadata,
    network_policy,
    pod_security,
    secret_env,
)
from gateway.render.source import (
    ENGINE_PORT,
    GATEWAY_PORT,
    MODEL_CACHE,
    Deployment,
    EngineService,
)

CONFIG_DIR = "/etc/vllm-gateway"
PRE_STOP_SECONDS = 5  # endpoints drop the pod before SIGTERM stops its listener
# checkov checks that fail by design, skipped in place with the reason.
SECRETS_AS_ENV = {
    "CKV_K8S_35": "models.yaml's ${VAR} secrets are read from the environment by design; "
    "they come from a Secret, never from the manifests"
}
TAG_PINNED = {"CKV_K8S_43": "images are pinned by tag; pin digests in your registry's overlay"}
ENGINE_SKIPS = {  # vLLM's official image: root, writable caches
    "CKV_K8S_22": "vLLM compiles kernels and writes caches at run time",
    "CKV_K8S_23": "vLLM's official image runs as root",
    **SECRETS_AS_ENV,
    "CKV_K8S_40": "vLLM's official image runs as root (UID 0)",
    **TAG_PINNED,
}


def render_k8s(deployment: Deployment) -> dict[str, str]:
    """Relative path -> file text, for base/, overlays/ and components/."""
    top = header("k8s", deployment.source)
    resources = {
        "namespace.yaml": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APP}}],
        "gateway.yaml": _gateway(deployment),
        "redis.yaml": _redis(),
        "network-policies.yaml": _network_policies(),
    }
    for engine in deployment.engines:
        resources[f"{engine.service}.yaml"] = _engine(engine)
    config, with_milvus = milvus.with_knowledge(deployment.gateway_config)
    # A changed models.yaml is a new ConfigMap name: `kubectl apply -k` rolls the gateway.
    generated = [{"name": "gateway-config", "files": ["models.yaml"]}]
    files: dict[str, str] = {}
    if config is not deployment.gateway_config:
        _mount_knowledge_files(resources["gateway.yaml"][0])
        resources["knowledge-files.yaml"] = [milvus.k8s_files_claim()]
    if with_milvus:
        resources["milvus.yaml"] = milvus.k8s_objects()
        resources["network-policies.yaml"].append(milvus.k8s_network_policy())
        generated.append({"name": "milvus-config", "files": ["embedEtcd.yaml"]})
        files["base/embedEtcd.yaml"] = dump(top, milvus.EMBED_ETCD)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": APP,
        "resources": list(resources),
        "configMapGenerator": generated,
    }
    files.update({f"base/{name}": dump(top, *docs) for name, docs in resources.items()})
    files["base/kustomization.yaml"] = dump(top, kustomization)
    files["base/models.yaml"] = dump(top, config)
    files.update(render_overlays(deployment, top))
    return files


def _mount_knowledge_files(workload: dict[str, Any]) -> None:
    """The gateway pods keep uploaded files and the catalog on the shared claim."""
    pod = workload["spec"]["template"]["spec"]
    pod["volumes"].append(
        {"name": "knowledge-files", "persistentVolumeClaim": {"claimName": "knowledge-files"}}
    )
    mount = {"name": "knowledge-files", "mountPath": milvus.FILES_DIR}
    pod["containers"][0]["volumeMounts"].append(mount)


def _gateway_container(deployment: Deployment) -> dict[str, Any]:
    container = {
        "name": "gateway",
        "image": images.GATEWAY_IMAGE,
        "imagePullPolicy": "Always",
        "args": [
            "serve",
            "--config",
            f"{CONFIG_DIR}/models.yaml",
            "--host",
            "0.0.0.0",
            "--port",
            str(GATEWAY_PORT),  # every interface of the pod
        ],
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
        "env": [secret_env(secret) for secret in deployment.gateway_secrets],
        "readinessProbe": http_probe("/ready", period=5, failures=2),
        "livenessProbe": http_probe("/health", period=10, failures=3),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}},
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"cpu": "2", "memory": "1Gi"},
        },
        "securityContext": hardened(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # tokenizer files are unpacked here
        ],
    }
    if not container["env"]:
        del container["env"]
    return container


def _gateway(deployment: Deployment) -> list[dict[str, Any]]:
    name = "gateway"
    container = _gateway_container(deployment)
    pod = {
        "metadata": {
            "labels": labels(name),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(GATEWAY_PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "automountServiceAccountToken": False,
            # preStop, then the drain period (server.drain_seconds), then a margin.
            "terminationGracePeriodSeconds": deployment.grace_seconds(PRE_STOP_SECONDS),
            "securityContext": pod_security(),
            "containers": [container],
            "volumes": [
                {"name": "config", "configMap": {"name": "gateway-config"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            ],
        },
    }
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": annotated(
            metadata(name), {**TAG_PINNED, **(SECRETS_AS_ENV if container.get("env") else {})}
        ),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels(name)},
            "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": pod,
        },
    }
    return [workload, _service(name, GATEWAY_PORT), _disruption_budget(name), _autoscaler(name)]


def _service(name: str, port: int, port_name: str = "http") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name),
        "spec": {
            "selector": labels(name),
            "ports": [{"name": port_name, "port": port, "targetPort": port_name}],
        },
    }


def _disruption_budget(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels(name)}},
    }


def _autoscaler(name: str) -> dict[str, Any]:
    cpu = {"type": "Utilization", "averageUtilization": 70}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": cpu}}],
        },
    }


def _redis() -> list[dict[str, Any]]:
    name = "redis"
    ping = {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 10}
    container = {
        "name": name,
        "image": images.REDIS_IMAGE,
        "imagePullPolicy": "Always",
        # Rate-limit windows only: nothing to persist.
        "args": ["--save", "", "--appendonly", "no"],
        "ports": [{"name": "redis", "containerPort": 6379}],
        "readinessProbe": ping,
        "livenessProbe": {**ping, "failureThreshold": 3},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": hardened(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": annotated(metadata(name), TAG_PINNED),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels(name)},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }
    return [workload, _service(name, 6379, "redis")]


def _engine_container(engine: EngineService) -> dict[str, Any]:
    startup_failures = max(1, math.ceil(engine.config.startup_timeout / 10))
    return {
        "name": "vllm",
        "image": images.VLLM_IMAGE,
        "imagePullPolicy": "Always",
        "command": list(images.GPU_ENGINE_PROGRAM),
        "args": engine.args,
        "ports": [{"name": "http", "containerPort": ENGINE_PORT}],
        "env": [
            {"name": "HF_HOME", "value": f"{MODEL_CACHE}/huggingface"},
            *({"name": key, "value": value} for key, value in engine.env.items()),
            *(secret_env(secret) for secret in engine.secret_env),
        ],
        # Loading weights takes minutes: readiness and liveness wait for startup.
        "startupProbe": http_probe("/health", period=10, failures=startup_failures),
        "readinessProbe": http_probe("/health", period=10, failures=2),
        "livenessProbe": http_probe("/health", period=20, failures=3),
        "resources": {
            "requests": {"cpu": "2", "memory": "8Gi"},
            "limits": {"cpu": "8", "memory": "32Gi"},
        },
        "securityContext": engine_security(),
        "volumeMounts": [
            {"name": "model-cache", "mountPath": MODEL_CACHE},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
    }


def _engine(engine: EngineService) -> list[dict[str, Any]]:
    name = engine.service
    pod = {
        "metadata": {"labels": labels("engine", engine=engine.engine)},
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 60,
            "securityContext": engine_pod_security(),
            "containers": [_engine_container(engine)],
            "volumes": [
                {"name": "model-cache", "persistentVolumeClaim": {"claimName": name}},
                # vLLM's workers share tensors through /dev/shm.
                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
            ],
        },
    }
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": annotated(metadata("engine", name, engine=engine.engine), ENGINE_SKIPS),
        "spec": {
            "replicas": engine.replicas,
            # The pods hold the model cache volume (ReadWriteOnce) and the GPUs: a
            # rollout replaces them rather than starting new ones beside them.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels("engine", engine=engine.engine)},
            "template": pod,
        },
    }
    service = _service(name, ENGINE_PORT)
    service["metadata"] = metadata("engine", name, engine=engine.engine)
    service["spec"]["selector"] = labels("engine", engine=engine.engine)
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata("engine", name, engine=engine.engine),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "50Gi"}},
        },
    }
    return [workload, service, claim]


def _network_policies() -> list[dict[str, Any]]:
    """Clients reach the gateway; only the gateway reaches Redis and the engines."""
    from_gateway = [{"podSelector": {"matchLabels": labels("gateway")}}]
    return [
        network_policy("gateway", labels("gateway"), GATEWAY_PORT, []),
        network_policy("redis", labels("redis"), 6379, from_gateway),
        network_policy("engines", labels("engine"), ENGINE_PORT, from_gateway),
    ]
