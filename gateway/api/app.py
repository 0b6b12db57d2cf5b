"""The aiohttp application: its lifespan builds every client and all state
(nothing lives in module globals), then the middlewares and the routes."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from adapters.registry import build_adapter
from gateway.access.control import AccessControl
from gateway.api.middleware import authenticate, make_middleware
from gateway.api.routes import add_routes
from gateway.api.state import STATE, AppState
from gateway.cache.service import ResponseCache
from gateway.config.loader import config_warnings
from gateway.config.schema import GatewayConfig
from gateway.engines.runtime import LocalEngines
from gateway.guardrails.service import Guardrails
from gateway.knowledge.build import build_knowledge
from gateway.observability.logs import AccessLog, make_logger
from gateway.observability.telemetry import Telemetry
from gateway.responses.build import build_responses
from gateway.routing.build import build_router
from gateway.routing.health import TargetHealth
from gateway.routing.reload import BuildRouter, LiveRouting, Rewrite
from gateway.routing.router import Router
from gateway.tokens import TokenCounter


def _router_builder(
    adapters: dict[str, Any],
    created: int,
    tokens: TokenCounter,
    engines: LocalEngines,
    telemetry: Telemetry,
) -> BuildRouter:
    """How LiveRouting builds a router, at startup and on each reload."""

    def build(config: GatewayConfig, previous: Mapping[str, TargetHealth]) -> Router:
        observer = telemetry.metrics.router_observer
        router = build_router(config, adapters, created, tokens, engines, observer, previous)
        telemetry.attach(router, engines)
        return router

    return build


def create_app(
    config: GatewayConfig,
    *,
    access_stream: IO[Any] | None = None,
    config_path: str | Path | None = None,
    reload_rewrite: Rewrite | None = None,
    engine_state: Path | None = None,
) -> web.Application:
    """``reload_rewrite`` turns a reloaded config into what this process runs,
    when that differs from the file (see ``gateway.routing.reload``);
    ``engine_state`` is where another process publishes the state of the
    engines it supervises for this one (``serve --workers N``)."""
    log = make_logger()
    app = web.Application(
        middlewares=[make_middleware(log), authenticate],  # type: ignore[list-item]
        client_max_size=config.server.max_body_bytes,
    )
    add_routes(app)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        with ExitStack() as files:
            stream = access_stream
            if stream is None and config.server.access_log:
                stream = files.enter_context(open(config.server.access_log, "a", buffering=1))
            adapters = {name: build_adapter(config.provider(name)) for name in config.providers}
            tokens = TokenCounter()
            created = int(time.time())
            for warning in config_warnings(config):
                log.warning("config warning", problem=warning)
            access = AccessControl(
                config,
                config_path=None if config_path is None else Path(config_path),
                tokens=tokens,
                log=log,
            )
            engines = LocalEngines(config, log, shared=engine_state)
            telemetry = Telemetry(config, log)
            build = _router_builder(adapters, created, tokens, engines, telemetry)
            routing = LiveRouting(config, adapters, build, rewrite=reload_rewrite)

            def current_router() -> Router:  # the judge and the embedder follow reloads
                return app[STATE].router

            guardrails = Guardrails(config, current_router)
            cache = ResponseCache(config, current_router, log)
            knowledge = build_knowledge(config, current_router, tokens, log)
            responses = build_responses(config, tokens, log, knowledge)
            app[STATE] = AppState(
                config=config,
                router=routing.router,
                routing=routing,
                tokens=tokens,
                access_log=AccessLog(stream),
                log=log,
                access=access,
                telemetry=telemetry,
                responses=responses,
                adapters=adapters,
                engines=engines,
                started=time.perf_counter(),
                guardrails=guardrails,
                cache=cache,
                knowledge=knowledge,
            )
            # Engines load in the background: /health answers meanwhile.
            engines.start()
            telemetry.start_background()
            # Load the tokenizer off the event loop so startup stays fast.
            warm = asyncio.get_running_loop().run_in_executor(None, tokens.load)
            # What exists once startup is over (config, clients, the tokenizer's
            # ranks) lives as long as the app: keep the collector off it.
            warm.add_done_callback(lambda _: gc.freeze())

            def publish(router: Router) -> None:
                app[STATE].router = router

            routing.start(publish)
            # A reload swaps the access rules and the routing table together.
            access.reload_steps += [routing.prepare, guardrails.prepare, cache.prepare]
            await access.start()
            if knowledge is not None:
                await knowledge.start()
            try:
                yield
            finally:
                warm.cancel()
                if knowledge is not None:  # first: its ingestion calls the router
                    await knowledge.aclose()
                await access.aclose()
                await routing.aclose()
                await asyncio.gather(*(a.aclose() for a in adapters.values()))
                await engines.aclose()
                await telemetry.aclose()
                await cache.aclose()
                await responses.aclose()

    app.cleanup_ctx.append(lifespan)
    return app
