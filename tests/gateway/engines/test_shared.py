"""The engine state one process publishes and another reads (serve --workers N)."""

from __future__ import annotations

from pathlib import Path

from gateway.config.schema import EngineConfig
from gateway.engines.handle import EngineHandle, EngineState
from gateway.engines.shared import SharedEngineState, write_state


def test_a_reader_sees_what_was_published_and_its_changes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    handle = EngineHandle("e1", EngineConfig(model="/m", family="llama3"), 20001, tmp_path / "l")
    reader = SharedEngineState(path)
    assert reader.handles == {}  # nothing published yet: no engines, no error
    write_state(path, {"e1": handle})
    (record,) = reader.handles.values()
    assert (record.name, record.state, record.port, record.is_ready()) == (
        "e1",
        EngineState.STARTING,
        20001,
        False,
    )
    assert reader.snapshot()["e1"] == handle.snapshot()
    handle.state, handle.restarts = EngineState.READY, 2
    write_state(path, {"e1": handle})
    record = reader.handles["e1"]
    assert record.is_ready() and record.restarts == 2
    assert not list(tmp_path.glob("*.tmp"))  # written whole, then renamed into place
