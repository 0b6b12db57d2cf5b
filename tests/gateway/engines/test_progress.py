"""The terminal progress table of loading engines."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

from rich.console import Console

from gateway.config.schema import EngineConfig
from gateway.engines.handle import EngineHandle, EngineState
from gateway.engines.progress import progress_table, show_progress


def handle(name: str, family: str, tmp: Path) -> EngineHandle:
    config = EngineConfig(model=f"/models/{name}", family=family)  # type: ignore[arg-type]
    return EngineHandle(name, config, 8100, tmp / f"{name}.log")


def text(table: object) -> str:
    console = Console(record=True, width=160, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_table_shows_each_engine_state_and_phase(tmp_path: Path) -> None:
    llama, qwen = (
        handle("llama3-local", "llama3", tmp_path),
        handle("qwen2-local", "qwen2", tmp_path),
    )
    llama.phase = "loading weights"
    qwen.state, qwen.phase = EngineState.READY, "serving"
    shown = text(progress_table([llama, qwen], time.monotonic() - 12))
    assert "llama3-local" in shown and "starting" in shown and "loading weights (12s)" in shown
    assert "qwen2-local" in shown and "ready" in shown and "serving" in shown
    assert "serving (" not in shown  # a settled engine shows no clock
    assert "http://127.0.0.1:8100/v1" in shown


async def test_live_display_ends_when_every_engine_settles(tmp_path: Path) -> None:
    engine = handle("r1", "deepseek-r1", tmp_path)
    out = io.StringIO()

    async def finish_loading() -> None:
        await asyncio.sleep(0.6)
        engine.state, engine.phase = EngineState.READY, "serving"

    await asyncio.wait_for(asyncio.gather(show_progress([engine], out), finish_loading()), 5)
    assert "ready" in out.getvalue() and "r1" in out.getvalue()
