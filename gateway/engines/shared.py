"""Engines seen from another process.

With ``serve --workers N`` the engines are supervised by one process and
requests are served by N others. The supervising process writes every
engine's state to a file (``publish``, twice a second, atomically); each
worker reads it (``SharedEngineState``, again only when the file changed),
so whichever worker answers, ``/ready`` lists the engines,
``vllm_gateway_engine_state`` reports them and the ``vllm:*`` series of the
ready ones are scraped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.engines.handle import EngineHandle, EngineState

PUBLISH_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class EngineRecord:
    """What a worker knows of an engine (the ``EngineStatus`` an EngineHandle also is)."""

    name: str
    state: EngineState
    port: int
    restarts: int
    details: dict[str, Any]  # the handle's own snapshot: what /ready shows

    def is_ready(self) -> bool:
        return self.state is EngineState.READY

    def snapshot(self) -> dict[str, Any]:
        return self.details


def write_state(path: Path, handles: Mapping[str, EngineHandle]) -> None:
    records = {
        name: {"port": handle.port, "restarts": handle.restarts, **handle.snapshot()}
        for name, handle in handles.items()
    }
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(orjson.dumps(records))
    partial.replace(path)  # readers see the old file or the new one, never half of one


async def publish(path: Path, handles: Mapping[str, EngineHandle]) -> None:
    """Keep ``path`` current until cancelled."""
    while True:
        await asyncio.to_thread(write_state, path, handles)
        await asyncio.sleep(PUBLISH_SECONDS)


class SharedEngineState:
    """The engines another process supervises, as its last published state."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[int, int] | None = None
        self._records: dict[str, EngineRecord] = {}

    @property
    def handles(self) -> dict[str, EngineRecord]:
        with contextlib.suppress(OSError, orjson.JSONDecodeError, KeyError, ValueError):
            stat = self._path.stat()
            stamp = (stat.st_ino, stat.st_mtime_ns)  # each publication is a new file
            if stamp != self._seen:
                self._records = _records(orjson.loads(self._path.read_bytes()))
                self._seen = stamp
        return self._records

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: record.snapshot() for name, record in self.handles.items()}


def _records(raw: dict[str, dict[str, Any]]) -> dict[str, EngineRecord]:
    records = {}
    for name, entry in raw.items():
        details = {k: v for k, v in entry.items() if k != "port"}
        records[name] = EngineRecord(
            name, EngineState(entry["state"]), int(entry["port"]), int(entry["restarts"]), details
        )
    return records
