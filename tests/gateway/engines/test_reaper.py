"""The reaper that parents each engine: engine trees die with the gateway,
and what a crashed engine leaves behind is killed, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway.engines.reaper import PID_MARKER, group_members
from tests.helpers import ROOT, wait_for

# An "engine" that, like vLLM's server, starts a helper process that would
# outlive it: the helper writes its pid, then both sleep.
ENGINE = "sleep 300 & echo $! > {pidfile}; exec sleep 300"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def start_reaper(
    tmp_path: Path, parent_pid: int, grace: float = 5, engine: str = ENGINE
) -> tuple[subprocess.Popen[bytes], int, int]:
    """The reaper running ``engine``; returns it, the engine pid and the helper pid."""
    pidfile = tmp_path / "helper.pid"
    log = tmp_path / "reaper.log"
    reaper = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.engines.reaper",
            "--parent-pid",
            str(parent_pid),
            "--grace",
            str(grace),
            "--",
            "sh",
            "-c",
            engine.format(pidfile=pidfile),
        ],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for(
        lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "the pid file", every=0.05
    )
    wait_for(lambda: PID_MARKER in log.read_text(), 10, "the pid in the log", every=0.05)
    engine_pid = int(log.read_text().split(PID_MARKER)[1].split()[0])
    return reaper, engine_pid, int(pidfile.read_text())


def test_an_engine_killed_with_sigkill_takes_its_leftovers_down(tmp_path: Path) -> None:
    reaper, engine, helper = start_reaper(tmp_path, os.getpid())
    assert set(group_members(reaper.pid)) == {reaper.pid, engine, helper}
    os.kill(engine, signal.SIGKILL)
    assert reaper.wait(10) == 128 + signal.SIGKILL  # the engine's fate, for the supervisor
    assert not alive(helper)


def test_sigterm_stops_the_engine_at_once_when_it_obeys(tmp_path: Path) -> None:
    reaper, engine, helper = start_reaper(tmp_path, os.getpid(), grace=30)
    started = time.monotonic()
    reaper.send_signal(signal.SIGTERM)
    reaper.wait(10)
    assert time.monotonic() - started < 5  # well before the grace period
    assert not alive(engine) and not alive(helper)
    assert group_members(reaper.pid) == []


def test_an_engine_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    stubborn = "trap '' TERM; " + ENGINE
    reaper, engine, helper = start_reaper(tmp_path, os.getpid(), grace=1, engine=stubborn)
    started = time.monotonic()
    reaper.send_signal(signal.SIGTERM)
    reaper.wait(10)
    assert 1 <= time.monotonic() - started < 5
    assert not alive(engine) and not alive(helper)


def test_the_engine_tree_dies_when_the_gateway_is_killed(tmp_path: Path) -> None:
    # A stand-in gateway: a process that starts the reaper, then is SIGKILLed.
    script = (
        "import subprocess, sys, time\n"
        "from tests.gateway.engines.test_reaper import start_reaper\n"
        "from pathlib import Path\n"
        "import os\n"
        "r, e, h = start_reaper(Path(sys.argv[1]), os.getpid())\n"
        "print(r.pid, e, h, flush=True)\n"
        "time.sleep(300)\n"
    )
    gateway = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE
    )
    assert gateway.stdout is not None
    reaper, engine, helper = (int(pid) for pid in gateway.stdout.readline().split())
    assert alive(reaper) and alive(engine) and alive(helper)
    gateway.kill()
    gateway.wait()
    wait_for(
        lambda: not any(alive(pid) for pid in (reaper, engine, helper)),
        15,
        "all three gone",
        every=0.05,
    )


def test_a_reaper_whose_gateway_is_already_gone_exits_at_once(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    reaper = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.engines.reaper",
            "--parent-pid",
            str(gone.pid),
            "--",
            "sleep",
            "300",
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert reaper.returncode == 1
    assert PID_MARKER.encode() not in reaper.stdout  # no engine was started
