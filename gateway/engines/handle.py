"""One supervised engine replica as the rest of the gateway sees it: its URL,
state and what went wrong. The ``EngineManager`` owns and updates the handles.

An engine of ``replicas: N`` runs as N identical vLLM servers, each its own
process, port, log and handle, named ``<engine>#0`` .. ``<engine>#N-1``; an
engine of one replica keeps the engine's own name."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from gateway.config.schema import EngineConfig


class EngineState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


class EngineStatus(Protocol):
    """An engine as metrics and /ready see it: a handle of this process's
    supervisor, or the record of another's (``gateway.engines.shared``)."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> EngineState: ...

    @property
    def port(self) -> int: ...

    @property
    def restarts(self) -> int: ...

    def is_ready(self) -> bool: ...

    def snapshot(self) -> dict[str, Any]: ...


@dataclass(eq=False)
class EngineHandle:
    name: str
    config: EngineConfig
    port: int
    log_path: Path
    state: EngineState = EngineState.STARTING
    phase: str = "waiting"  # what the engine is doing now, for operators
    pid: int | None = None  # the vLLM server process (not the reaper)
    restarts: int = 0
    error: str | None = None
    load_seconds: float | None = None
    ready_since: float | None = None
    process: Any = field(default=None, repr=False)  # the reaper's asyncio Process
    # Called each time the engine becomes ready (after a start or a restart),
    # one per routing target: a reload replaces a target's callback, never adds one.
    on_ready: dict[str, Callable[[], None]] = field(default_factory=dict, repr=False)
    engine: str = ""  # the models.yaml entry this replica is of (default: ``name``)
    replica: int = 0

    def __post_init__(self) -> None:
        self.engine = self.engine or self.name

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    @property
    def served_name(self) -> str:
        return self.config.name_for_clients

    def is_ready(self) -> bool:
        return self.state is EngineState.READY

    def snapshot(self) -> dict[str, Any]:
        """What /ready shows about the engine: no log contents (they may hold
        secrets) and no file paths (they tell an outsider about the host)."""
        return {
            "engine": self.engine,
            "replica": self.replica,
            "state": self.state.value,
            "phase": self.phase,
            "family": self.config.family,
            "model": self.served_name,
            "url": self.base_url,
            "pid": self.pid,
            "restarts": self.restarts,
            "load_seconds": self.load_seconds,
            "error": self.error,
        }


def replica_names(engine: str, config: EngineConfig) -> list[str]:
    """The names of an engine's replicas: the engine's own when it has one."""
    if config.replicas == 1:
        return [engine]
    return [f"{engine}#{index}" for index in range(config.replicas)]


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as stream:
            low, high = (int(part) for part in stream.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def allocate_port(taken: set[int], rng: random.Random | None = None) -> int:
    """A free loopback port for an engine, chosen below the ephemeral range.

    The engine binds it only after loading (seconds later); ports from the
    ephemeral range could meanwhile be handed to some outgoing connection.
    """
    rng = rng or random.Random()
    low, _ = _ephemeral_range()
    floor = 20000 if low > 21000 else 1024
    for _ in range(200):
        port = rng.randrange(floor, low)
        if port not in taken and _is_free(port):
            return port
    with socket.socket() as sock:  # a crowded range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
