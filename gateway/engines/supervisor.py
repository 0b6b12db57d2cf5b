"""Launching and watching the local vLLM engines of models.yaml.

``EngineManager`` is built in the app's lifespan, with one handle per engine
replica (``gateway.engines.handle``): every replica below is supervised on
its own, as an engine of one replica is. Ports are allocated up front, so
every replica's URL is known before it launches; ``start()`` returns at once
and each replica starts in a background task, so the gateway answers
/health while engines load. Each engine runs under ``gateway.engines.reaper``
in a process group of its own, which dies with the gateway even on SIGKILL.

States: starting -> ready; a crash (or a hung /health) -> restarting, with
exponential backoff, up to the engine's ``max_restarts`` consecutive
failures -> failed. A configuration problem (unknown vLLM flag, checksum
mismatch, vLLM missing) fails the engine at once. ``stop()`` -> stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.config import Timeouts
from adapters.errors import EngineStartError, GatewayError
from adapters.transport.registry import open_transport
from adapters.transport.settings import TransportSettings
from gateway.config.schema import EngineConfig
from gateway.engines.checksums import verify_checksums
from gateway.engines.flags import VllmFlags, default_cache_dir, load_flags
from gateway.engines.handle import EngineHandle, EngineState, allocate_port, replica_names
from gateway.engines.logfile import (
    LogFollower,
    last_error,
    progress_events,
    redact_argv,
    tail,
)
from gateway.engines.presets import EngineCommand, build_command

LOG_DIR_ENV = "VLLM_GATEWAY_ENGINE_LOG_DIR"


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    backoff_base: float = 1.0  # seconds before the first restart; doubles each time
    backoff_max: float = 30.0
    stable_after: float = 60.0  # ready this long: earlier failures are forgotten
    stop_grace: float = 10.0  # SIGTERM, then SIGKILL after this many seconds
    health_interval: float = 5.0
    health_timeout: float = 10.0
    health_failures: int = 3  # consecutive failed checks that count as a crash


class _Crash(Exception):
    """The engine did not come up; the message says how."""


class EngineManager:
    def __init__(
        self,
        engines: Mapping[str, EngineConfig],
        *,
        log: Any,
        log_dir: Path | None = None,
        python: str = sys.executable,
        cache_dir: Path | None = None,
        policy: RestartPolicy | None = None,
    ) -> None:
        self.log = log
        self.python = python
        self.policy = policy or RestartPolicy()
        self.cache_dir = cache_dir or default_cache_dir()
        # Engine logs go to $VLLM_GATEWAY_ENGINE_LOG_DIR (kept), else to a
        # temporary directory removed at a clean stop (kept if an engine failed).
        given = log_dir or os.environ.get(LOG_DIR_ENV)
        self._temporary_logs = given is None and bool(engines)
        if given is None:
            given = tempfile.mkdtemp(prefix="vllm-gateway-engines-") if engines else "."
        self.log_dir = Path(given)
        taken: set[int] = {
            e.port + index for e in engines.values() if e.port for index in range(e.replicas)
        }
        self.handles: dict[str, EngineHandle] = {}
        for engine, config in engines.items():
            for index, name in enumerate(replica_names(engine, config)):
                port = config.port + index if config.port else allocate_port(taken)
                taken.add(port)
                log_path = self.log_dir / f"{name}.log"
                handle = EngineHandle(name, config, port, log_path, engine=engine, replica=index)
                self.handles[name] = handle
        self._tasks: list[asyncio.Task[None]] = []
        self._flags: asyncio.Future[VllmFlags] | None = None
        self._verified: dict[str, asyncio.Future[None]] = {}
        self._probe = open_transport(TransportSettings(what="engine", trust_env=False))
        self._settled = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start every engine in the background; returns at once."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for handle in self.handles.values():
            self.log.info(
                "engine.configured",
                engine=handle.name,
                replica=handle.replica,
                model=handle.config.model,
                family=handle.config.family,
                url=handle.base_url,
                log_file=str(handle.log_path),
            )
            self._tasks.append(asyncio.create_task(self._supervise(handle), name=handle.name))
        if not self.handles:
            self._settled.set()

    async def wait_settled(self, timeout: float | None = None) -> bool:
        """Wait until every engine is ready or failed (the first time)."""
        try:
            await asyncio.wait_for(self._settled.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop every engine: SIGTERM, then SIGKILL of its whole group after the grace."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(self._terminate(h) for h in self.handles.values()))
        if self._flags is not None and not self._flags.done():
            self._flags.cancel()
        await self._probe.aclose()
        failed = [h.name for h in self.handles.values() if h.error is not None]
        if self._temporary_logs and not failed:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        for handle in self.handles.values():
            handle.state = EngineState.STOPPED
        self.log.info("engine.all_stopped", engines=len(self.handles), logs_kept_for=failed)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: handle.snapshot() for name, handle in self.handles.items()}

    # -- one engine ----------------------------------------------------------

    async def _supervise(self, handle: EngineHandle) -> None:
        try:
            await self._keep_running(handle)
        except Exception as exc:  # a bug here must not leave the engine "starting" forever
            self.log.exception("engine.supervisor_error", engine=handle.name)
            await self._terminate(handle)
            self._fail(handle, f"the supervisor failed: {exc!r}")

    async def _keep_running(self, handle: EngineHandle) -> None:
        try:
            command = await self._preflight(handle)
        except EngineStartError as exc:
            self._fail(handle, str(exc), show_log=False)
            return
        failures = 0
        while True:
            crash = await self._run_once(handle, command)
            if handle.ready_since is not None and (
                time.monotonic() - handle.ready_since >= self.policy.stable_after
            ):
                failures = 0
            failures += 1
            if failures > handle.config.max_restarts:
                self._fail(handle, crash)
                return
            delay = min(self.policy.backoff_base * 2 ** (failures - 1), self.policy.backoff_max)
            handle.state = EngineState.RESTARTING
            handle.restarts += 1
            handle.error = crash
            self.log.warning(
                "engine.restarting",
                engine=handle.name,
                reason=crash,
                in_seconds=delay,
                attempt=failures,
                max_restarts=handle.config.max_restarts,
                log_tail="\n".join(tail(handle.log_path)),
            )
            await asyncio.sleep(delay)

    async def _preflight(self, handle: EngineHandle) -> EngineCommand:
        command = build_command(
            handle.config, port=handle.port, python=self.python, replica=handle.replica
        )
        flags = await self._vllm_flags()
        problems = flags.problems(handle.name, command.flags)
        if problems:
            raise EngineStartError("; ".join(problems))
        config = handle.config
        if config.sha256:
            handle.phase = "verifying checksums"
            # Once per engine, however many replicas load its weights.
            verified = self._verified.get(handle.engine)
            if verified is None:
                verified = self._verified[handle.engine] = asyncio.ensure_future(
                    asyncio.to_thread(verify_checksums, handle.engine, config.model, config.sha256)
                )
            await asyncio.shield(verified)
        return command

    async def _vllm_flags(self) -> VllmFlags:
        if self._flags is None:
            self._flags = asyncio.ensure_future(load_flags(self.python, self.cache_dir))
        return await asyncio.shield(self._flags)

    async def _run_once(self, handle: EngineHandle, command: EngineCommand) -> str:
        """Launch, wait until ready, watch; return why the engine went down."""
        handle.state = EngineState.STARTING if handle.restarts == 0 else EngineState.RESTARTING
        handle.phase = "launching"
        handle.ready_since = None
        handle.pid = None
        launched = time.monotonic()
        follower = LogFollower(handle.log_path)
        follower.start_at_end()
        self.log.info("engine.launching", engine=handle.name, argv=redact_argv(command.argv))
        process = await self._spawn(handle, command)
        handle.process = process
        exited = asyncio.ensure_future(process.wait())
        try:
            await self._until_ready(handle, process, exited, follower, launched)
            self._mark_ready(handle, launched)
            reason = await self._watch(handle, exited)
        except _Crash as crash:
            reason = str(crash)
        finally:
            exited.cancel()
        await self._terminate(handle)
        return reason

    def _mark_ready(self, handle: EngineHandle, launched: float) -> None:
        handle.load_seconds = round(time.monotonic() - launched, 1)
        handle.state, handle.phase, handle.error = EngineState.READY, "serving", None
        handle.ready_since = time.monotonic()
        for callback in handle.on_ready.values():
            callback()
        self.log.info(
            "engine.ready",
            engine=handle.name,
            url=handle.base_url,
            load_seconds=handle.load_seconds,
            pid=handle.pid,
        )
        self._check_settled()

    async def _spawn(self, handle: EngineHandle, command: EngineCommand) -> Any:
        argv = [
            self.python,
            "-m",
            "gateway.engines.reaper",
            "--parent-pid",
            str(os.getpid()),
            "--grace",
            str(self.policy.stop_grace),
            "--",
            *command.argv,
        ]
        with handle.log_path.open("ab") as log_file:
            # Forked from the event-loop thread: the reaper's parent-death signal
            # is tied to the thread that forked it, which lives as long as the app.
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                env=command.env,
                start_new_session=True,
            )

    async def _until_ready(
        self,
        handle: EngineHandle,
        process: Any,
        exited: asyncio.Future[int],
        follower: LogFollower,
        launched: float,
    ) -> None:
        deadline = launched + handle.config.startup_timeout
        while True:
            self._follow(handle, follower, launched)
            if exited.done():
                cause = last_error(tail(handle.log_path, 40))
                raise _Crash(
                    f"the engine exited with code {process.returncode} while starting"
                    + (f" ({cause})" if cause else "")
                )
            if time.monotonic() > deadline:
                raise _Crash(f"the engine was not ready after {handle.config.startup_timeout:g}s")
            if handle.pid is not None and await self._healthy(handle):
                self._follow(handle, follower, launched)
                return
            await asyncio.wait({exited}, timeout=0.5)

    def _follow(self, handle: EngineHandle, follower: LogFollower, launched: float) -> None:
        for kind, value in progress_events(follower.new_lines()):
            if kind == "pid":
                handle.pid = int(value)
                continue
            handle.phase = value
            self.log.info(
                "engine.loading",
                engine=handle.name,
                phase=value,
                elapsed_seconds=round(time.monotonic() - launched, 1),
            )

    async def _watch(self, handle: EngineHandle, exited: asyncio.Future[int]) -> str:
        """Wait while the engine serves; return why it stopped serving."""
        misses = 0
        while True:
            await asyncio.wait({exited}, timeout=self.policy.health_interval)
            if exited.done():
                return f"the engine exited with code {exited.result()}"
            if await self._healthy(handle, self.policy.health_timeout):
                misses = 0
                continue
            misses += 1
            if misses >= self.policy.health_failures:
                return f"the engine failed {misses} health checks in a row"

    async def _healthy(self, handle: EngineHandle, timeout: float = 2.0) -> bool:
        limits = Timeouts(connect=timeout, first_token=timeout, idle=timeout, total=timeout)
        try:
            response = await self._probe.request("GET", handle.health_url, None, limits)
        except GatewayError:
            return False
        return response.status == 200

    async def _terminate(self, handle: EngineHandle) -> None:
        process = handle.process
        if process is None:
            return
        handle.process = None
        handle.pid = None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), self.policy.stop_grace + 5)
        # The reaper leads the engine's process group: take down anything left.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            await process.wait()

    def _fail(self, handle: EngineHandle, reason: str, *, show_log: bool = True) -> None:
        handle.state, handle.error, handle.phase = EngineState.FAILED, reason, "failed"
        lines = tail(handle.log_path) if show_log else []
        self.log.error(
            "engine.failed",
            engine=handle.name,
            reason=reason,
            log_file=str(handle.log_path),
            log_tail="\n".join(lines),
        )
        self._check_settled()

    def _check_settled(self) -> None:
        if all(h.state in (EngineState.READY, EngineState.FAILED) for h in self.handles.values()):
            self._settled.set()
