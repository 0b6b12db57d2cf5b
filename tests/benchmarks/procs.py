"""The processes of a benchmark run: servers pinned to a core, waited on until
ready, stopped cleanly; and the load driver run to completion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from tests.helpers import ROOT

GATEWAY_CORE = "0"
# The mock (or engine) and the driver share the other core; a one-core machine
# still runs the benchmark, its figures just mean less.
LOAD_CORE = "1" if (os.cpu_count() or 1) > 1 else "0"


def pinned(core: str, args: Sequence[str]) -> list[str]:
    return ["taskset", "-c", core, *args]


def wait_ready(url: str, deadline: float, alive: Callable[[], bool], poll: float = 0.005) -> None:
    """Poll ``url`` until it answers 2xx; fail if the process dies or time runs out."""
    while time.perf_counter() < deadline:
        if not alive():
            raise RuntimeError(f"process exited before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status < 300:
                    return
        except OSError:
            pass
        time.sleep(poll)
    raise TimeoutError(f"{url} not ready in time")


class Server:
    """A server process whose output goes to a log file."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        port: int,
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_dir / f"{name}-{port}.log"
        with open(self.log_path, "wb") as log:
            self.launched = time.perf_counter()
            self.proc = subprocess.Popen(
                list(args),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # so stop() can signal the server's own children
            )
        self.ready_after = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, path: str, timeout: float) -> float:
        """Seconds from launch until ``path`` answered."""
        try:
            wait_ready(self.url + path, self.launched + timeout, lambda: self.proc.poll() is None)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"{self.name}: {exc}\n{self.log_tail()}") from exc
        self.ready_after = time.perf_counter() - self.launched
        return self.ready_after

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def run_driver(
    args: Sequence[str], core: str, on_checkpoint: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Run the load driver on ``core``; checkpoints are reported as they happen."""
    command = pinned(core, python_module("tests.benchmarks.driver", *args))
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    result: dict[str, Any] | None = None
    for line in proc.stdout:
        message = orjson.loads(line)
        if "checkpoint" in message and on_checkpoint is not None:
            on_checkpoint(int(message["checkpoint"]))
        elif "result" in message:
            result = message["result"]
    errors = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0 or result is None:
        raise RuntimeError(f"driver failed ({proc.returncode}):\n{errors[-3000:]}")
    return result
