"""What the console shows operators beyond ``/ready`` and ``/v1/gateway/targets``
(not in OpenAI's API):

- ``GET /v1/gateway/routing``: every public model's strategy, fallbacks and
  targets (weight, tier, upstream model). Open on a gateway without any
  credential configured; otherwise it needs an admin key, like the targets.
- ``GET /v1/gateway/engines/{name}/log?lines=N``: the last lines of a local
  engine's log, with every secret the engine was given masked. Admin key only:
  a log may still say more about the host than callers should see.
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from adapters.errors import InvalidRequestError, NotFoundError
from gateway.api.routes.admin import require_admin
from gateway.api.state import STATE

JSON = "application/json"
DEFAULT_LOG_LINES = 100
MAX_LOG_LINES = 1000


async def routing_table(request: web.Request) -> web.Response:
    require_admin(request, unless_open=True)
    models = request.app[STATE].router.models
    data = [
        {
            "id": name,
            "object": "gateway.model_routing",
            "strategy": model.config.strategy,
            "fallbacks": model.config.fallbacks,
            "fallback_on": model.config.fallback_on,
            "context_window": model.context_window,
            "targets": [
                {
                    "id": target.name,
                    "model": target.upstream_model,
                    "weight": target.weight,
                    "tier": target.tier,
                    "available": target.available(),
                }
                for target in model.targets
            ],
        }
        for name, model in models.items()
    ]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type=JSON)


def _line_count(request: web.Request) -> int:
    given = request.query.get("lines")
    if given is None:
        return DEFAULT_LOG_LINES
    if not given.isdigit() or not 1 <= int(given) <= MAX_LOG_LINES:
        raise InvalidRequestError(
            f"'lines' must be a whole number from 1 to {MAX_LOG_LINES}; got '{given}'.",
            param="lines",
        )
    return int(given)


async def engine_log(request: web.Request) -> web.Response:
    require_admin(request, unless_open=False)
    name = request.match_info["name"]
    lines = _line_count(request)
    engines = request.app[STATE].engines
    tail = None if engines is None else await asyncio.to_thread(engines.log_tail, name, lines)
    if tail is None:
        raise NotFoundError(
            f"No local engine is named '{name}' in this gateway process.", code="engine_not_found"
        )
    payload = {"object": "gateway.engine_log", "engine": name, "lines": tail}
    return web.Response(body=orjson.dumps(payload), content_type=JSON)


def add_operator_routes(app: web.Application) -> None:
    app.router.add_get("/v1/gateway/routing", routing_table)
    app.router.add_get("/v1/gateway/engines/{name}/log", engine_log)
