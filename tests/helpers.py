"""Process helpers for tests: real servers on loopback, started and stopped cleanly."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent


def build_backend() -> ModuleType:
    """deploy/build_backend.py, the build backend (not a package: loaded by path)."""
    spec = importlib.util.spec_from_file_location("build_backend", ROOT / "deploy/build_backend.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def project_copy(into: Path) -> Path:
    """What building the package reads, copied to ``into`` (a build writes a
    build/ folder beside its sources; the checkout should not get one)."""
    ignored = shutil.ignore_patterns("__pycache__", "*.so")
    for package in ("gateway", "adapters"):
        shutil.copytree(ROOT / package, into / package, ignore=ignored)
    (into / "deploy").mkdir()
    for name in ("pyproject.toml", "README.md", "deploy/build_backend.py"):
        shutil.copy(ROOT / name, into / name)
    return into


def wheel_files(source: Path, dist: Path) -> set[str]:
    """What the wheel pip builds from ``source`` (into ``dist``) holds. Built
    uncompiled: what it carries, not the compiled guardrails (tests/deploy
    checks those)."""
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    done = subprocess.run(
        [*pip, "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "VLLM_GATEWAY_COMPILE": "0"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = dist.glob("vllm_gateway-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(method: str, url: str, body: Any = None, timeout: float = 10) -> Any:
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return orjson.loads(response.read())


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; that value. Fails
    the test, naming ``what``, when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(every)


class ServerProcess:
    """A subprocess serving HTTP on 127.0.0.1:port, ready once ``ready_path`` answers."""

    def __init__(
        self,
        args: Sequence[str],
        port: int,
        log_path: Path,
        ready_path: str = "/health",
        env: dict[str, str] | None = None,
        startup_timeout: float = 30,
        cwd: Path = ROOT,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - open for the process's lifetime
        self.proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        self._wait_ready(ready_path, startup_timeout)

    def _wait_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


class FakeUpstream(ServerProcess):
    """tests/fakes/openai_server.py in its own process."""

    def __init__(
        self,
        tmp: Path,
        name: str = "fake",
        usage: bool = True,
        api_key: str | None = None,
        otlp_endpoint: str | None = None,
    ) -> None:
        port = free_port()
        args = [
            sys.executable,
            "-m",
            "tests.fakes.openai_server",
            "--port",
            str(port),
            "--name",
            name,
        ]
        if not usage:
            args.append("--no-usage")
        if api_key is not None:
            args += ["--api-key", api_key]
        if otlp_endpoint is not None:
            args += ["--otlp-endpoint", otlp_endpoint]
        ready = "/_requests" if api_key is not None else "/v1/models"
        super().__init__(args, port, tmp / f"upstream-{name}-{port}.log", ready_path=ready)
        self.base_url = self.url + "/v1"

    def requests(self) -> list[dict[str, Any]]:
        return list(http_json("GET", self.url + "/_requests"))

    def events(self) -> list[dict[str, Any]]:
        return list(http_json("GET", self.url + "/_events"))

    def reset(self) -> None:
        http_json("POST", self.url + "/_reset", {})

    def set_load(self, running: float = 0, waiting: float = 0, kv_cache_usage: float = 0) -> None:
        """What its ``/metrics`` reports, as a vLLM server's would."""
        load = {"running": running, "waiting": waiting, "kv_cache_usage": kv_cache_usage}
        http_json("POST", self.url + "/_load", load)

    def faults(self, *faults: dict[str, Any], fail_ratio: float | None = None) -> None:
        payload: dict[str, Any] = {"faults": list(faults)}
        if fail_ratio is not None:
            payload["fail_ratio"] = fail_ratio
        http_json("POST", self.url + "/_faults", payload)


class RawUpstream(ServerProcess):
    """tests/fakes/raw_http.py in its own process: an upstream that misbehaves
    as each request's ``model`` says."""

    def __init__(self, tmp: Path) -> None:
        port = free_port()
        args = [sys.executable, "-m", "tests.fakes.raw_http", "--port", str(port)]
        super().__init__(args, port, tmp / f"raw-upstream-{port}.log", ready_path="/v1/json")
        self.base_url = self.url + "/v1"


class Gateway(ServerProcess):
    """``vllm-gateway serve`` on a config written from a dict, as users run it."""

    def __init__(
        self,
        tmp: Path,
        config: dict[str, Any],
        env: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30,
        cwd: Path = ROOT,
    ) -> None:
        """``cwd``: the checkout whose gateway runs (another one, to compare)."""
        port = free_port()
        self.config_path = tmp / f"gateway-{port}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        args = [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(self.config_path),
            "--port",
            str(port),
            *extra_args,
        ]
        super().__init__(
            args,
            port,
            tmp / f"gateway-{port}.log",
            env=env,
            startup_timeout=startup_timeout,
            cwd=cwd,
        )
        self.base_url = self.url + "/v1"


class RedisServer:
    """Debian's ``redis-server`` on a free loopback port, without persistence."""

    def __init__(self, tmp: Path, port: int | None = None, startup_timeout: float = 10) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log = open(tmp / f"redis-{self.port}.log", "ab")  # noqa: SIM115 - process lifetime
        self.proc = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + startup_timeout
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
