"""Running the app: uvloop, graceful shutdown (stop accepting, drain, exit)."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from gateway.app import create_app
from gateway.config import GatewayConfig


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # uvloop is not available on every platform
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(config: GatewayConfig, *, host: str, port: int, config_path: str | None = None) -> None:
    # The path lets SIGHUP and POST /v1/gateway/reload re-read the access rules.
    app = create_app(config, config_path=config_path)
    print(f"vllm-gateway listening on http://{host}:{port}/v1", file=sys.stderr, flush=True)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        print=None,
        # The drain period: in-flight requests get this long after SIGTERM.
        shutdown_timeout=config.server.drain_seconds,
        # A client that disconnects cancels its handler, which closes the
        # upstream request at once instead of generating tokens nobody reads.
        handler_cancellation=True,
        loop=new_event_loop(),
    )
