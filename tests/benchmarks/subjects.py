"""What a run measures: the mock upstream (``direct``), the gateway (and, with
``--compare``, its other configurations), a naive FastAPI + httpx pass-through
and LiteLLM's proxy, each started the same way."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.benchmarks.configs import (
    PUBLIC_MODEL,
    gateway_bench_config,
    gateway_client_headers,
    litellm_bench_config,
    litellm_client_headers,
)
from tests.benchmarks.procs import GATEWAY_CORE, LOAD_CORE, Server, pinned, python_module
from tests.helpers import free_port

LITELLM_VENV = Path.home() / ".cache" / "vllm-gateway-bench" / "litellm-venv"
LITELLM_ENV = {
    # No internet here: LiteLLM's cost map comes from its package, not GitHub.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOG": "ERROR",
}


@dataclass(slots=True)
class Subject:
    """Something the driver sends load to."""

    name: str
    base_url: str  # ends in /v1
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    server: Server | None = None  # None for direct: the upstream is not under test

    @property
    def chat_url(self) -> str:
        return self.base_url + "/chat/completions"


def start_mock(log_dir: Path, chunks: int = 16) -> Server:
    port = free_port()
    args = python_module(
        "tests.benchmarks.mock_upstream", "--port", str(port), "--chunks", str(chunks)
    )
    server = Server("mock", pinned(LOAD_CORE, args), port, log_dir)
    server.wait_ready("/health", timeout=20)
    return server


def start_gateway(
    log_dir: Path,
    upstream_base_url: str,
    upstream_model: str,
    name: str = "gateway",
    workers: int | None = None,
    redis_url: str | None = None,
    features: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Subject:
    """``python -m gateway serve`` alone on the gateway core, configured as
    ``name`` says (``configs.GATEWAY_VARIANTS``); with ``workers``,
    ``serve --workers N`` free to use every core; ``features`` switches more on
    (``configs.with_pii_guardrail``, ``configs.with_cache``)."""
    port = free_port()
    variant_dir = log_dir / f"{name}-{port}"
    variant_dir.mkdir()
    config = gateway_bench_config(upstream_base_url, upstream_model, variant_dir, name, redis_url)
    if features is not None:
        config = features(config)
    config_path = log_dir / f"{name}-{port}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    args = python_module("gateway", "serve", "--config", str(config_path), "--port", str(port))
    if workers is None:
        args = pinned(GATEWAY_CORE, args)
    else:
        args += ["--workers", str(workers)]
    server = Server(name, args, port, log_dir)
    server.wait_ready("/health", timeout=30)
    headers = {} if name == "plain" else gateway_client_headers()
    return Subject(name, server.url + "/v1", PUBLIC_MODEL, headers, server)


def direct_subject(mock: Server, model: str) -> Subject:
    return Subject("direct", mock.url + "/v1", model)


def ensure_litellm(log: Path) -> Path:
    """LiteLLM's proxy in a venv of its own (created once, then reused)."""
    executable = LITELLM_VENV / "bin" / "litellm"
    if executable.exists():
        return executable
    print(f"installing litellm[proxy] into {LITELLM_VENV} (once)", file=sys.stderr, flush=True)
    with open(log, "wb") as out:
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "litellm[proxy]"],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return executable


def start_litellm(
    log_dir: Path, upstream_base_url: str, upstream_model: str, name: str = "litellm"
) -> Subject:
    """LiteLLM's proxy, one worker, alone on the gateway core."""
    executable = ensure_litellm(log_dir / "litellm-install.log")
    port = free_port()
    config_path = log_dir / f"{name}-{port}.yaml"
    config_path.write_text(
        yaml.safe_dump(litellm_bench_config(upstream_base_url, upstream_model), sort_keys=False)
    )
    args = [
        str(executable),
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    server = Server(name, pinned(GATEWAY_CORE, args), port, log_dir, env=LITELLM_ENV)
    server.wait_ready("/health/liveliness", timeout=180)
    return Subject(name, server.url + "/v1", PUBLIC_MODEL, litellm_client_headers(), server)


def start_fastapi_probe(log_dir: Path, upstream_base_url: str, upstream_model: str) -> Subject:
    """The naive alternative the gateway's design was measured against: FastAPI
    on uvicorn forwarding each request with httpx (``fastapi_probe``)."""
    port = free_port()
    args = python_module(
        "tests.benchmarks.fastapi_probe",
        *("--port", str(port), "--upstream", upstream_base_url, "--model", PUBLIC_MODEL),
        *("--upstream-model", upstream_model),
    )
    server = Server("fastapi", pinned(GATEWAY_CORE, args), port, log_dir)
    server.wait_ready("/health", timeout=60)
    return Subject("fastapi", server.url + "/v1", PUBLIC_MODEL, {}, server)
