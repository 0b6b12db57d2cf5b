"""Running the app: uvloop, TLS, graceful shutdown, and ``--workers N``.

One worker serves in this process. With N workers the parent binds the
listening socket, forks N worker processes that share it (the kernel spreads
connections over them), supervises the local engines itself (workers reach
them over loopback as OpenAI-compatible providers, see
``gateway.engines.remote``), forwards SIGTERM/SIGINT/SIGHUP to every worker,
restarts a worker that dies, and sets up prometheus-client's multiprocess
mode so any worker's ``/metrics`` shows the totals of all.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from aiohttp import web

from gateway.api.app import create_app
from gateway.api.listener import GatewayRunner, GatewayServer, Listener
from gateway.api.state import STATE
from gateway.config.schema import GatewayConfig, ServerConfig
from gateway.engines.reaper import die_with_parent
from gateway.engines.remote import engines_as_providers
from gateway.engines.shared import publish, write_state
from gateway.engines.supervisor import EngineManager
from gateway.observability.logs import make_logger
from gateway.observability.metrics import MULTIPROC_ENV, prepare_multiprocess
from gateway.routing.reload import Rewrite


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # uvloop is not available on every platform
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def ssl_context(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    if certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


def serve(
    config: GatewayConfig,
    *,
    host: str,
    port: int,
    config_path: str | None = None,
    workers: int = 1,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    tls = ssl_context(certfile, keyfile)
    scheme = "https" if tls else "http"
    print(f"vllm-gateway listening on {scheme}://{host}:{port}/v1", file=sys.stderr, flush=True)
    if workers <= 1:
        _run_worker(config, config_path, tls, sock=listening_socket(host, port))
    else:
        _Supervisor(config, config_path, tls, workers).run(host, port)


# Requests allocate many short-lived containers; at the default thresholds the
# collector ran thousands of times a second under load (18% of the CPU and
# 40 ms full collections in the profile). Young objects rarely form cycles here.
GC_THRESHOLDS = (7000, 20, 100)


def _run_worker(
    config: GatewayConfig,
    config_path: str | None,
    tls: ssl.SSLContext | None,
    *,
    sock: socket.socket,
    reload_rewrite: Rewrite | None = None,
    engine_state: Path | None = None,
) -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    # The path lets SIGHUP and POST /v1/gateway/reload re-read the config.
    app = create_app(
        config, config_path=config_path, reload_rewrite=reload_rewrite, engine_state=engine_state
    )
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve_app(app, sock, tls, config.server))
    finally:
        loop.close()


async def _serve_app(
    app: web.Application, sock: socket.socket, tls: ssl.SSLContext | None, limits: ServerConfig
) -> None:
    """Serve until SIGTERM or SIGINT; then drain (``gateway.api.drain``): stop
    accepting, give in-flight requests ``drain_seconds`` to finish, end the
    rest cleanly, and only then clean the app up (engines stop last)."""
    runner = GatewayRunner(
        app,
        limits,
        handle_signals=False,
        access_log=None,
        # The drain period: in-flight requests get this long after SIGTERM.
        shutdown_timeout=limits.drain_seconds,
        # A client that disconnects cancels its handler, which closes the
        # upstream request at once instead of generating tokens nobody reads.
        handler_cancellation=True,
        keepalive_timeout=limits.keepalive_timeout,
        # One header line may use all of max_header_bytes; the handler bounds the total.
        max_line_size=limits.max_header_bytes,
        max_field_size=limits.max_header_bytes,
    )
    await runner.setup()
    assert isinstance(runner.server, GatewayServer)
    listener = Listener(sock, runner.server, tls)
    listener.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        await listener.close()  # no new connection; the others drain
        await app[STATE].drain.run(limits.drain_seconds)
    finally:
        await listener.close()
        await runner.cleanup()


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog)
    sock.setblocking(False)
    return sock


class _Supervisor:
    """The parent process of ``--workers N``: no event loop and no threads of
    its own, so every fork (workers, the engine supervisor, restarts) is clean."""

    def __init__(
        self,
        config: GatewayConfig,
        config_path: str | None,
        tls: ssl.SSLContext | None,
        workers: int,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.tls = tls
        self.workers = workers
        self.log = make_logger()
        self.worker_pids: set[int] = set()
        self.engine_pid: int | None = None
        self.pending: list[int] = []  # signals received, handled by the main loop
        # What a worker runs (and re-derives on reload) instead of the file's config.
        self.rewrite: Rewrite = _unchanged
        self.engine_state: Path | None = None

    def run(self, host: str, port: int) -> None:
        metrics_dir = os.environ.get(MULTIPROC_ENV)
        prepare_multiprocess(Path(metrics_dir) if metrics_dir else None)
        sock = listening_socket(host, port)
        sock.set_inheritable(True)
        engines = EngineManager(self.config.engines, log=self.log) if self.config.engines else None
        if engines is not None:
            urls = {name: handle.base_url for name, handle in engines.handles.items()}
            self.rewrite = partial(_engines_supervised_apart, urls=urls)
            # Where the engine process publishes its engines' state for the workers.
            self.engine_state = (
                Path(tempfile.mkdtemp(prefix="vllm-gateway-engines-")) / "state.json"
            )
            write_state(self.engine_state, engines.handles)
        worker_config = self.rewrite(self.config)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda number, _frame: self.pending.append(number))
        if engines is not None:
            self.engine_pid = self._fork(lambda: _run_engines(engines, self.engine_state))
        for _ in range(self.workers):
            self.worker_pids.add(self._fork(lambda: self._worker(worker_config, sock)))
        try:
            self._supervise(worker_config, sock, engines)
        finally:
            sock.close()

    def _worker(self, config: GatewayConfig, sock: socket.socket) -> None:
        _run_worker(
            config,
            self.config_path,
            self.tls,
            sock=sock,
            reload_rewrite=self.rewrite,
            engine_state=self.engine_state,
        )

    def _fork(self, body: Callable[[], None]) -> int:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            return pid
        code = 0
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            die_with_parent(parent)
            body()
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    def _supervise(
        self, config: GatewayConfig, sock: socket.socket, engines: EngineManager | None
    ) -> None:
        while True:
            while self.pending:
                sig = self.pending.pop(0)
                if sig == signal.SIGHUP:
                    self._signal(self.worker_pids, signal.SIGHUP)
                else:
                    self._shutdown(config.server.drain_seconds)
                    return
            for pid in self._reap(self.worker_pids):
                self.log.warning("worker exited; starting another", pid=pid)
                self.worker_pids.add(self._fork(lambda: self._worker(config, sock)))
            engine_pid = self.engine_pid
            if engines is not None and engine_pid is not None and self._reap({engine_pid}):
                self.log.warning("engine supervisor exited; starting another")
                self.engine_pid = self._fork(lambda: _run_engines(engines, self.engine_state))
            time.sleep(0.2)

    def _shutdown(self, drain_seconds: float) -> None:
        """Workers drain first; the engines they use stop after them."""
        self._signal(self.worker_pids, signal.SIGTERM)
        deadline = time.monotonic() + drain_seconds + 5
        while self.worker_pids and time.monotonic() < deadline:
            self._reap(self.worker_pids)
            time.sleep(0.05)
        self._signal(self.worker_pids, signal.SIGKILL)
        if self.engine_pid is not None:
            engine_pid = {self.engine_pid}
            self._signal(engine_pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while engine_pid and time.monotonic() < deadline:
                self._reap(engine_pid)
                time.sleep(0.05)
            self._signal(engine_pid, signal.SIGKILL)

    @staticmethod
    def _signal(pids: set[int], sig: int) -> None:
        for pid in list(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    @staticmethod
    def _reap(pids: set[int]) -> list[int]:
        """Remove and return the processes of ``pids`` that have exited."""
        gone = []
        for pid in list(pids):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pids.discard(pid)
                gone.append(pid)
        return gone


def _unchanged(config: GatewayConfig) -> GatewayConfig:
    return config


def _engines_supervised_apart(config: GatewayConfig, urls: dict[str, str]) -> GatewayConfig:
    """A worker's view: engines are providers on loopback, whose readiness the
    worker learns from frequent health checks."""
    config = engines_as_providers(config, urls)
    routing = config.routing.model_copy(update={"health_check_interval": 1.0})
    return config.model_copy(update={"routing": routing})


def _run_engines(engines: EngineManager, state: Path | None) -> None:
    """The engine supervisor process of ``--workers N``: start, watch, publish
    the engines' state for the workers, stop on SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        engines.start()
        publishing = asyncio.create_task(publish(state, engines.handles)) if state else None
        await stop.wait()
        if publishing is not None:
            publishing.cancel()
        await engines.stop()

    loop = new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
