"""Probes and scrapes: ``/health`` (liveness), ``/ready`` (readiness per model
and target) and ``/metrics`` (Prometheus), open without a key."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from gateway.api.state import STATE
from gateway.observability.metrics import CONTENT_TYPE

JSON = "application/json"


async def health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type=JSON)


async def ready(request: web.Request) -> web.Response:
    """Readiness, per model and target. 200 "ready" when every model can be
    served, 200 "degraded" when some can (so one broken engine does not take
    every replica out of a load balancer), 503 "not_ready" when none can.
    ``?strict`` answers 503 unless every model can be served."""
    state = request.app[STATE]
    if state.drain.draining:  # shutting down: out of the load balancer at once
        return web.Response(body=b'{"status":"draining"}', content_type=JSON, status=503)
    targets = {t.name: t for m in state.router.models.values() for t in m.targets}
    checks = await asyncio.gather(
        *(_target_ready(t) for t in targets.values()), return_exceptions=True
    )
    reachable = {name: ok is True for name, ok in zip(targets, checks, strict=True)}
    models = {
        name: {
            "ready": any(reachable[t.name] for t in model.targets),
            "targets": {t.name: "up" if reachable[t.name] else "down" for t in model.targets},
        }
        for name, model in state.router.models.items()
    }
    servable = sum(1 for m in models.values() if m["ready"])
    if servable == len(models):
        status, code = "ready", 200
    elif servable and "strict" not in request.query:
        status, code = "degraded", 200
    else:
        status, code = "not_ready", 503
    payload: dict[str, Any] = {"status": status, "models": models}
    if state.engines is not None and state.engines.handles:
        payload["engines"] = state.engines.snapshot()
    return web.Response(body=orjson.dumps(payload), content_type=JSON, status=code)


async def _target_ready(target: Any) -> bool:
    return bool(target.available()) and await target.adapter.health() is None


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition: the gateway's series and its engines' (observability.metrics)."""
    body = await request.app[STATE].telemetry.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_probe_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
