"""Engine loading progress on a terminal: a live table (rich) that redraws
while engines load, instead of the plain log lines a log file gets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from gateway.engines.handle import EngineHandle, EngineState

SETTLED = (EngineState.READY, EngineState.FAILED, EngineState.STOPPED)


def progress_table(handles: Iterable[EngineHandle], started: float) -> Table:
    table = Table(title="vLLM engines", title_justify="left")
    for column in ("ENGINE", "FAMILY", "STATE", "NOW", "URL"):
        table.add_column(column)
    elapsed = f"{time.monotonic() - started:.0f}s"
    for handle in handles:
        loading = handle.state not in SETTLED
        table.add_row(
            handle.name,
            handle.config.family or "-",
            handle.state.value,
            f"{handle.phase} ({elapsed})" if loading else handle.phase,
            handle.base_url,
        )
    return table


async def show_progress(handles: list[EngineHandle], stream: IO[str]) -> None:
    """Redraw the table until every engine is ready, failed or stopped."""
    started = time.monotonic()
    console = Console(file=stream)
    with Live(progress_table(handles, started), console=console, auto_refresh=False) as live:
        while not all(h.state in SETTLED for h in handles):
            await asyncio.sleep(0.25)
            live.update(progress_table(handles, started), refresh=True)
        live.update(progress_table(handles, started), refresh=True)
