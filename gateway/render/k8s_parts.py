"""Small pieces the Kubernetes manifests share: labels, probes, security
contexts, Secret references, and checkov skips written in place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.render.source import SecretEnv

APP = "vllm-gateway"
SECRET_NAME = "vllm-gateway-secrets"
GATEWAY_UID = 10001  # the user deploy/docker/Dockerfile creates


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": GATEWAY_UID,
        "runAsGroup": GATEWAY_UID,
        "fsGroup": GATEWAY_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def hardened() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def engine_security() -> dict[str, Any]:
    """vLLM's official image runs as root and writes caches: only what it allows."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def engine_pod_security() -> dict[str, Any]:
    return {"seccompProfile": {"type": "RuntimeDefault"}}


def labels(component: str, **extra: str) -> dict[str, str]:
    found = {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component}
    found.update({f"{APP}/{key}": value for key, value in extra.items()})
    return found


def metadata(component: str, name: str | None = None, **extra: str) -> dict[str, Any]:
    return {"name": name or component, "labels": labels(component, **extra)}


def annotated(meta: dict[str, Any], skips: Mapping[str, str]) -> dict[str, Any]:
    """checkov skips, each with its reason, on the object they concern."""
    notes = {
        f"checkov.io/skip{n}": f"{check}={why}"
        for n, (check, why) in enumerate(sorted(skips.items()), start=1)
    }
    return {**meta, "annotations": notes}


def http_probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def secret_env(secret: SecretEnv) -> dict[str, Any]:
    """An env entry from the Secret; optional when models.yaml gives a default."""
    reference = {"name": SECRET_NAME, "key": secret.key, "optional": secret.default is not None}
    return {"name": secret.name, "valueFrom": {"secretKeyRef": reference}}


def network_policy(name: str, pods: dict[str, str], port: int, peers: list[dict]) -> dict:
    """Ingress to ``pods`` on ``port`` only, from ``peers`` (any source when empty)."""
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port}]}
    if peers:
        rule["from"] = peers
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": APP}},
        "spec": {
            "podSelector": {"matchLabels": pods},
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        },
    }
