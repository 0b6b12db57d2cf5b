"""``vllm-gateway serve --demo``: three tiny local engines, no downloads.

The checkpoints (tiny Llama 3, Qwen2 and DeepSeek-R1-Distill-Qwen, random
weights) are built on first run under a cache directory and reused after.
Building runs in a subprocess so the gateway process never imports torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.config.schema import GatewayConfig
from gateway.engines.flags import default_cache_dir
from gateway.engines.tiny import DEMO_FAMILIES, checkpoint_dir, is_built

CACHE_ENV = "VLLM_GATEWAY_TINY_MODELS"


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


def demo_config(checkpoints: dict[str, Path], port: int | None = None) -> GatewayConfig:
    """The layout of the repository's models.yaml (public models ``llama3``,
    ``qwen2``, ``deepseek-r1``, each on engine ``<family>-local``) on tiny checkpoints."""
    engines = {
        f"{family}-local": demo_engine(path, family, f"tiny-{family}")
        for family, path in checkpoints.items()
    }
    models = {family: {"targets": [{"engine": f"{family}-local"}]} for family in checkpoints}
    server: dict[str, Any] = {} if port is None else {"port": port}
    return GatewayConfig.model_validate({"server": server, "engines": engines, "models": models})


def banner(config: GatewayConfig, host: str, port: int) -> str:
    lines = [
        "vllm-gateway demo: tiny random-weight engines (the text is gibberish; every token",
        "still comes from a real vLLM engine). They load in the background.",
        f"  base_url: http://{host}:{port}/v1",
        f"  models:   {', '.join(config.models)}",
        "  api_key:  any (the demo has no keys)",
    ]
    return "\n".join(lines)
