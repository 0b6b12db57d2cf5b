"""Rendered deployments of a gateway with a ``knowledge:`` section: a Milvus
standalone service beside it.

Milvus runs as ``milvus run standalone`` with its embedded etcd and local
storage (one container, one volume: Milvus's own single-node layout). The
gateway's rendered config reaches it at ``http://milvus:19530`` when
models.yaml names a Milvus Lite path (a server URI is kept as written), and
keeps its uploaded files and catalog (``files_dir``) on a volume of its own.
"""

from __future__ import annotations

from typing import Any

from gateway.render.k8s_parts import annotated, hardened, labels, metadata, network_policy

MILVUS_IMAGE = "milvusdb/milvus:v2.5.27"
MILVUS_PORT = 19530
MILVUS_HEALTH_PORT = 9091
MILVUS_URI = f"http://milvus:{MILVUS_PORT}"
MILVUS_DATA = "/var/lib/milvus"
ETCD_CONFIG = "/milvus/configs/embedEtcd.yaml"
FILES_DIR = "/var/lib/vllm-gateway/files"
# The embedded etcd's settings (Milvus's standalone_embed layout).
EMBED_ETCD = {
    "listen-client-urls": "http://0.0.0.0:2379",
    "advertise-client-urls": "http://0.0.0.0:2379",
    "quota-backend-bytes": 4294967296,
    "auto-compaction-mode": "revision",
    "auto-compaction-retention": "1000",
}
ENVIRONMENT = {
    "ETCD_USE_EMBED": "true",
    "ETCD_DATA_DIR": f"{MILVUS_DATA}/etcd",
    "ETCD_CONFIG_PATH": ETCD_CONFIG,
    "COMMON_STORAGETYPE": "local",
    "DEPLOY_MODE": "STANDALONE",
}
MILVUS_SKIPS = {
    "CKV_K8S_43": "images are pinned by tag; pin digests in your registry's overlay",
    "CKV_K8S_40": "Milvus's official image runs as root (UID 0)",
    "CKV_K8S_23": "Milvus's official image runs as root",
    "CKV_K8S_22": "Milvus writes its data and logs under its own directories",
}


def knowledge_of(gateway: dict[str, Any]) -> dict[str, Any] | None:
    """The rendered config's ``knowledge:`` section, pointed at the Milvus
    service and the files volume (None: no knowledge section)."""
    section = gateway.get("knowledge")
    if not isinstance(section, dict):
        return None
    uri = str(section.get("milvus_uri", ""))
    rewritten = dict(section)
    if not uri.startswith(("http://", "https://", "tcp://", "unix:")):
        rewritten["milvus_uri"] = MILVUS_URI
    rewritten["files_dir"] = FILES_DIR
    return rewritten


def with_knowledge(gateway: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The rendered gateway config, and whether it needs the Milvus service."""
    knowledge = knowledge_of(gateway)
    if knowledge is None:
        return gateway, False
    return {**gateway, "knowledge": knowledge}, knowledge["milvus_uri"] == MILVUS_URI


# ---- Compose ---------------------------------------------------------------------------


def compose_service() -> dict[str, Any]:
    health = f"curl -f http://localhost:{MILVUS_HEALTH_PORT}/healthz"
    return {
        "image": MILVUS_IMAGE,
        "command": ["milvus", "run", "standalone"],
        "environment": ENVIRONMENT,
        "security_opt": ["seccomp:unconfined"],
        "volumes": ["milvus-data:" + MILVUS_DATA, f"./milvus/embedEtcd.yaml:{ETCD_CONFIG}:ro"],
        "healthcheck": {
            "test": ["CMD-SHELL", health],
            "interval": "30s",
            "timeout": "20s",
            "retries": 3,
            "start_period": "90s",
        },
        "restart": "unless-stopped",
    }


# ---- Kubernetes ------------------------------------------------------------------------


def k8s_objects() -> list[dict[str, Any]]:
    """A StatefulSet (its data on a claim of its own) and its Service; the
    ConfigMap of the embedded etcd's settings is kustomize's to generate."""
    name = "milvus"
    probe = {
        "httpGet": {"path": "/healthz", "port": "health"},
        "periodSeconds": 15,
        "timeoutSeconds": 10,
        "failureThreshold": 3,
    }
    container = {
        "name": name,
        "image": MILVUS_IMAGE,
        "imagePullPolicy": "Always",
        "command": ["milvus", "run", "standalone"],
        "env": [{"name": k, "value": v} for k, v in ENVIRONMENT.items()],
        "ports": [
            {"name": "grpc", "containerPort": MILVUS_PORT},
            {"name": "health", "containerPort": MILVUS_HEALTH_PORT},
        ],
        "startupProbe": {**probe, "periodSeconds": 10, "failureThreshold": 18},
        "readinessProbe": probe,
        "livenessProbe": probe,
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "4", "memory": "8Gi"},
        },
        "securityContext": {**hardened(), "readOnlyRootFilesystem": False},
        "volumeMounts": [
            {"name": "data", "mountPath": MILVUS_DATA},
            {"name": "etcd-config", "mountPath": ETCD_CONFIG, "subPath": "embedEtcd.yaml"},
        ],
    }
    workload = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": annotated(metadata(name), MILVUS_SKIPS),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": labels(name)},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": "etcd-config", "configMap": {"name": "milvus-config"}}],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "20Gi"}},
                    },
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name),
        "spec": {
            "selector": labels(name),
            "ports": [{"name": "grpc", "port": MILVUS_PORT, "targetPort": "grpc"}],
        },
    }
    return [workload, service]


def k8s_files_claim() -> dict[str, Any]:
    """The gateway replicas' uploaded files and catalog, shared by all of them."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata("gateway", "knowledge-files"),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "20Gi"}},
        },
    }


def k8s_network_policy() -> dict[str, Any]:
    from_gateway = [{"podSelector": {"matchLabels": labels("gateway")}}]
    return network_policy("milvus", labels("milvus"), MILVUS_PORT, from_gateway)
