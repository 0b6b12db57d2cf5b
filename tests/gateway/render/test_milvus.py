"""A models.yaml with a ``knowledge:`` section renders Milvus standalone beside
the gateway (Compose and Kubernetes), valid against their schemas, and the
gateway's rendered config reaches it by service name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.config.loader import parse_config
from tests.deploy.conftest import kustomize
from tests.deploy.test_compose import schema_errors
from tests.deploy.test_k8s import schema_problems
from tests.gateway.render.test_render import documents, rendered

CONFIG: dict[str, Any] = {
    "engines": {
        "embedder": {"model": "sentence-transformers/all-MiniLM-L6-v2", "family": "embedding"}
    },
    "models": {"minilm": {"targets": [{"engine": "embedder"}]}},
    "knowledge": {"embedding_model": "minilm", "milvus_uri": "./data/milvus.db"},
}


def test_compose_gains_milvus_and_a_files_volume(tmp_path: Path) -> None:
    files = rendered(tmp_path, "compose", CONFIG)
    project = yaml.safe_load(files["compose.yaml"])
    assert schema_errors(project) == []
    milvus = project["services"]["milvus"]
    assert milvus["command"] == ["milvus", "run", "standalone"]
    assert milvus["environment"]["ETCD_USE_EMBED"] == "true"
    assert "./milvus/embedEtcd.yaml:/milvus/configs/embedEtcd.yaml:ro" in milvus["volumes"]
    assert yaml.safe_load(files["milvus/embedEtcd.yaml"])["listen-client-urls"]
    gateway = project["services"]["gateway"]
    assert gateway["depends_on"]["milvus"] == {"condition": "service_healthy"}
    assert "knowledge-files:/var/lib/vllm-gateway/files" in gateway["volumes"]
    assert {"milvus-data", "knowledge-files"} <= set(project["volumes"])
    config = parse_config(files["gateway/models.yaml"], env={})
    assert config.knowledge is not None
    assert config.knowledge.milvus_uri == "http://milvus:19530"
    assert config.knowledge.files_dir == "/var/lib/vllm-gateway/files"


def test_a_milvus_server_uri_is_kept_and_no_milvus_is_rendered(tmp_path: Path) -> None:
    config = {**CONFIG, "knowledge": {**CONFIG["knowledge"], "milvus_uri": "https://m.corp:19530"}}
    files = rendered(tmp_path, "compose", config)
    project = yaml.safe_load(files["compose.yaml"])
    assert "milvus" not in project["services"] and "milvus/embedEtcd.yaml" not in files
    assert parse_config(files["gateway/models.yaml"], env={}).knowledge.milvus_uri == (  # type: ignore[union-attr]
        "https://m.corp:19530"
    )
    (tmp_path / "plain").mkdir()
    plain = rendered(
        tmp_path / "plain", "compose", {k: v for k, v in CONFIG.items() if k != "knowledge"}
    )
    assert "knowledge-files" not in plain["compose.yaml"]


def test_kubernetes_gains_a_milvus_statefulset_and_the_files_claim(tmp_path: Path) -> None:
    files = rendered(tmp_path, "k8s", CONFIG)
    objects = kustomize(tmp_path / "k8s" / "overlays" / "cpu")
    assert schema_problems(objects) == []
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("StatefulSet", "milvus"), ("Service", "milvus"), ("NetworkPolicy", "milvus")} <= kinds
    assert ("PersistentVolumeClaim", "knowledge-files") in kinds
    (etcd,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("milvus-config")
    ]
    assert "embedEtcd.yaml" in etcd["data"]
    (gateway,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "gateway"
    ]
    mounts = gateway["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "knowledge-files", "mountPath": "/var/lib/vllm-gateway/files"} in mounts
    config = parse_config(files["base/models.yaml"], env={})
    assert config.knowledge is not None and config.knowledge.milvus_uri == "http://milvus:19530"
    assert documents(files["base/milvus.yaml"])[0]["spec"]["replicas"] == 1
