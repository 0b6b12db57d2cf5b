"""The engine state one process publishes and another reads (serve --workers N)."""

from __future__ import annotations

from pathlib import Path

from gateway.config.loader import parse_config
from gateway.config.schema import BreakerConfig, EngineConfig
from gateway.engines.handle import EngineHandle, EngineState
from gateway.engines.runtime import LocalEngines
from gateway.engines.shared import SharedEngineState, write_state
from gateway.observability.logs import make_logger
from gateway.routing.health import TargetHealth


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


def test_a_worker_routes_to_a_replica_once_it_is_published_ready(tmp_path: Path) -> None:
    # A worker's engine target is a provider target whose health checks may
    # have failed while the engine loaded: its readiness comes from the
    # published state, and turning ready forgets those failed checks.
    path = tmp_path / "state.json"
    handle = EngineHandle("e1", EngineConfig(model="/m", family="llama3"), 20001, tmp_path / "l")
    write_state(path, {"e1": handle})
    engines = LocalEngines(parse_config("models: {}\n", env={}), make_logger(), shared=path)
    health = TargetHealth("engine/e1", BreakerConfig())
    available = engines.availability_for("engine/e1", health)
    assert available is not None
    assert engines.availability_for("engine/other", health) is None
    assert engines.availability_for("provider/m", health) is None
    health.checked_healthy = False  # a check failed while it loaded
    assert available() is False
    handle.state = EngineState.READY
    write_state(path, {"e1": handle})
    assert available() is True
    assert health.checked_healthy is None and health.usable(0.0)
    health.checked_healthy = False  # a check failing once it serves is kept
    assert available() is True and not health.usable(0.0)
