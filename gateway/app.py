"""The aiohttp application: lifespan (clients and state), one middleware
(request id, OpenAI-shaped errors, access log) and the routes."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from adapters import build_adapter
from gateway.access import AccessControl
from gateway.access_routes import add_access_routes, authenticate
from gateway.config import GatewayConfig, TargetConfig, Timeouts
from gateway.config_loader import config_warnings
from gateway.engines.runtime import LocalEngines
from gateway.errors import GatewayError, InvalidRequestError, NotFoundError, PayloadTooLargeError
from gateway.health import TargetHealth
from gateway.live_routing import BuildRouter, LiveRouting, Rewrite, provider_target_name
from gateway.logs import AccessLog, AccessRecord, make_logger
from gateway.responses import prompt_tokens
from gateway.router import Observer, PublicModel, Router, Target, make_model
from gateway.routes import add_routes
from gateway.state import RECORD, STATE, AppState
from gateway.telemetry import Telemetry
from gateway.tokens import TokenCounter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def merged_timeouts(*layers: Timeouts | None) -> Timeouts:
    """Later layers override earlier ones, key by key (only keys a layer sets).
    With no override the base object itself is returned, so adapters can keep
    their prebuilt client timeouts for it."""
    base, *overrides = layers
    if not any(o is not None and o.model_fields_set for o in overrides):
        return base or Timeouts()
    values: dict[str, Any] = {}
    for layer in layers:
        if layer is not None:
            values.update({k: getattr(layer, k) for k in layer.model_fields_set})
    return Timeouts(**values)


def build_router(
    config: GatewayConfig,
    adapters: dict[str, Any],
    created: int,
    tokens: TokenCounter,
    engines: LocalEngines | None = None,
    observer: Observer | None = None,
    previous: Mapping[str, TargetHealth] | None = None,
) -> Router:
    """The router of ``config``. A target named in ``previous`` (a reload) keeps
    that TargetHealth, its breaker state and in-flight count, with the new
    config's settings."""
    routing = config.routing
    health: dict[str, TargetHealth] = {}
    kept = previous or {}
    rng = random.Random()

    def health_of(name: str, spec: TargetConfig) -> TargetHealth:
        if name in health:
            return health[name]
        found = kept.get(name)
        if found is None:
            found = TargetHealth(
                name,
                routing.breaker,
                spec.max_concurrency,
                routing.max_queue,
                routing.queue_timeout,
            )
        else:
            found.breaker, found.max_concurrency = routing.breaker, spec.max_concurrency
            found.max_queue, found.queue_timeout = routing.max_queue, routing.queue_timeout
        health[name] = found
        return found

    models: dict[str, PublicModel] = {}
    for name, model in config.models.items():
        targets = []
        for spec in model.targets:
            if spec.engine is not None and engines is not None:
                health_name = f"engine/{spec.engine}"
                targets.append(
                    engines.target(spec, model, health_of(health_name, spec), merged_timeouts)
                )
                continue
            assert spec.provider is not None and spec.model is not None
            provider = config.providers[spec.provider]
            target_name = provider_target_name(spec)
            targets.append(
                Target(
                    name=target_name,
                    adapter=adapters[spec.provider],
                    upstream_model=spec.model,
                    health=health_of(target_name, spec),
                    weight=spec.weight,
                    tier=spec.tier,
                    timeouts=merged_timeouts(provider.timeouts, model.timeouts, spec.timeouts),
                    defaults=spec.sampling,
                )
            )
        models[name] = make_model(name, targets, model, routing.retries, created, rng)
    return Router(
        models, count_prompt=lambda body: prompt_tokens(body, tokens), observer=observer, rng=rng
    )


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


class RequestIds:
    """Request ids: the client's own ``X-Request-ID`` when sane, else a random
    per-process prefix and a counter (unique across workers, and much cheaper
    than a uuid4 per request)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._next = itertools.count(1).__next__

    def __call__(self, request: web.Request) -> str:
        given = request.headers.get("X-Request-ID")
        if given and len(given) <= 128 and given.isprintable():
            return given
        return f"{self._prefix}{self._next():016x}"


def _http_exception_error(request: web.Request, exc: web.HTTPException) -> GatewayError:
    if isinstance(exc, web.HTTPNotFound):
        return NotFoundError(
            f"Unknown request URL: {request.method} {request.path}.", code="unknown_url"
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLargeError("Request body is larger than the configured limit.")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        error = InvalidRequestError(
            f"Method {request.method} is not allowed for {request.path}.",
            code="method_not_allowed",
        )
        error.status = 405
        return error
    error = InvalidRequestError(exc.reason or "Bad request.")
    error.status = exc.status
    return error


def error_response(exc: GatewayError, request_id: str) -> web.Response:
    return web.Response(
        status=exc.status,
        body=exc.to_json(),
        content_type="application/json",
        headers={**exc.headers, "X-Request-ID": request_id},
    )


def make_middleware(log: Any) -> Middleware:
    request_id = RequestIds()

    @web.middleware
    async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        record = AccessRecord(
            request_id(request), request.method, request.path, time.perf_counter()
        )
        request[RECORD] = record
        telemetry = request.app[STATE].telemetry
        span = telemetry.start(record)
        try:
            response = await handler(request)
        except GatewayError as exc:
            record.error_type = exc.type
            response = error_response(exc, record.request_id)
        except web.HTTPException as exc:
            error = _http_exception_error(request, exc)
            record.error_type = error.type
            response = error_response(error, record.request_id)
        except asyncio.CancelledError:
            record.status = 499  # the client went away
            request.app[STATE].access_log.write(record)
            telemetry.finish(record, span)
            raise
        except Exception:
            log.exception("unhandled error", request_id=record.request_id, path=request.path)
            error = GatewayError("The server had an error while processing your request.")
            record.error_type = error.type
            response = error_response(error, record.request_id)
        if not response.prepared:
            response.headers.setdefault("X-Request-ID", record.request_id)
        record.status = response.status
        request.app[STATE].access_log.write(record)
        telemetry.finish(record, span)
        return response

    return gateway_middleware


def create_app(
    config: GatewayConfig,
    *,
    access_stream: IO[Any] | None = None,
    config_path: str | Path | None = None,
    reload_rewrite: Rewrite | None = None,
) -> web.Application:
    """``reload_rewrite`` turns a reloaded config into what this process runs,
    when that differs from the file (see ``gateway.live_routing``)."""
    log = make_logger()
    app = web.Application(
        middlewares=[make_middleware(log), authenticate],  # type: ignore[list-item]
        client_max_size=config.server.max_body_bytes,
    )
    add_routes(app)
    add_access_routes(app)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        with ExitStack() as files:
            stream = access_stream
            if stream is None and config.server.access_log:
                stream = files.enter_context(open(config.server.access_log, "a", buffering=1))
            adapters = {name: build_adapter(p) for name, p in config.providers.items()}
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
            engines = LocalEngines(config, log)
            telemetry = Telemetry(config, log)
            build = _router_builder(adapters, created, tokens, engines, telemetry)
            routing = LiveRouting(config, adapters, build, rewrite=reload_rewrite)
            app[STATE] = AppState(
                config=config,
                router=routing.router,
                routing=routing,
                tokens=tokens,
                access_log=AccessLog(make_logger(stream, name="access")),
                log=log,
                access=access,
                telemetry=telemetry,
                adapters=adapters,
                engines=engines,
                started=time.perf_counter(),
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
            access.reload_steps.append(routing.prepare)
            await access.start()
            try:
                yield
            finally:
                warm.cancel()
                await access.aclose()
                await routing.aclose()
                await asyncio.gather(*(a.aclose() for a in adapters.values()))
                await engines.aclose()
                await telemetry.aclose()

    app.cleanup_ctx.append(lifespan)
    return app
