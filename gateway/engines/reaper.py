"""A small parent for one engine process tree, so engines die with the gateway.

vLLM's API server spawns an engine-core process that outlives the server if
the server is killed, and nothing in the tree notices when the gateway
itself is killed with SIGKILL. The gateway therefore starts each engine
through this reaper (``python -m gateway.engines.reaper``; stdlib only, no
vllm import), which:

- asks the kernel for SIGTERM when the gateway dies (PR_SET_PDEATHSIG), and
  exits at once if the gateway is already gone;
- leads its own process group, so the whole engine tree is one group the
  gateway can kill with one call;
- adopts orphans (PR_SET_CHILD_SUBREAPER), so an engine core whose server
  crashed is still its descendant and is killed and reaped, not left behind;
- on SIGTERM, asks the engine to stop, waits ``--grace`` seconds, then kills
  the group; when the engine exits by itself, kills what it left behind and
  exits with the engine's status (128 + signal number if it was killed).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PID_MARKER = "vllm-gateway reaper: engine pid"


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Get ``sig`` when the parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        _prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent_pid:
        os._exit(1)


def group_members(pgid: int) -> list[int]:
    """Live processes in a process group (zombies excluded), from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp, ...
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _kill_others(pgid: int, timeout: float = 5.0) -> None:
    """SIGKILL every other member of the group and wait until they are gone."""
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        others = [pid for pid in group_members(pgid) if pid != me]
        if not others:
            return
        for pid in others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
        _reap_all()


def _reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run(command: Sequence[str], parent_pid: int, grace: float) -> int:
    die_with_parent(parent_pid)
    if os.getpgid(0) != os.getpid():
        os.setpgid(0, 0)
    pgid = os.getpgid(0)
    if sys.platform.startswith("linux"):
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    stopping = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    me = os.getpid()
    # This process is single-threaded, so a preexec_fn is safe here.
    engine = subprocess.Popen(list(command), preexec_fn=lambda: die_with_parent(me))
    print(f"{PID_MARKER} {engine.pid} (process group {pgid})", flush=True)
    deadline: float | None = None
    while engine.poll() is None:
        if stopping and deadline is None:
            engine.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
        if deadline is not None and time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if engine.poll() is None:  # the grace period is over
        engine.kill()
    engine.wait()
    _kill_others(pgid)
    _reap_all()
    return _exit_status(engine.returncode)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no engine command given")
    return run(command, args.parent_pid, args.grace)


if __name__ == "__main__":
    sys.exit(main())
