"""The HTTP side of access control: the middleware that authenticates every
``/v1/`` request, and the ``/v1/gateway`` key and reload endpoints."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from adapters.errors import PermissionDeniedError
from gateway.access.auth import PRINCIPAL, Principal
from gateway.api.state import STATE

JSON = "application/json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require_admin(request: web.Request, *, unless_open: bool = False) -> None:
    """Admins pass; with ``unless_open``, so does anyone on a gateway that has
    no key, admin key or JWT configured at all (operator views of an open
    gateway are as open as its models)."""
    principal: Principal = request[PRINCIPAL]
    if principal.kind == "admin":
        return
    access = request.app[STATE].access
    authenticator = access.policy.authenticator
    if unless_open and not authenticator.keys and authenticator.jwt is None:
        return
    if not access.policy.has_admin_keys:
        raise PermissionDeniedError(
            "Admin endpoints are off: no auth.admin_keys are configured.", code="admin_only"
        )
    raise PermissionDeniedError("This endpoint needs an admin key.", code="admin_only")


async def my_key(request: web.Request) -> web.Response:
    """The caller's own limits and current usage."""
    described = await request.app[STATE].access.describe(request[PRINCIPAL])
    return web.Response(
        body=orjson.dumps({"object": "gateway.key", **described}), content_type=JSON
    )


async def list_keys(request: web.Request) -> web.Response:
    require_admin(request)
    access = request.app[STATE].access
    authenticator = access.policy.authenticator
    data = [{"object": "gateway.key", **await access.describe(key)} for key in authenticator.keys]
    payload = {
        "object": "list",
        "data": data,
        "open": authenticator.open,
        "jwt": authenticator.jwt is not None,
        "limiter": access.limiter.status,
    }
    return web.Response(body=orjson.dumps(payload), content_type=JSON)


async def reload_config(request: web.Request) -> web.Response:
    require_admin(request)
    state = request.app[STATE]
    policy = await state.access.reload()
    authenticator = policy.authenticator
    payload: dict[str, object] = {
        "status": "reloaded",
        "keys": sum(1 for key in authenticator.keys if key.kind == "key"),
        "admin_keys": sum(1 for key in authenticator.keys if key.kind == "admin"),
        "jwt": authenticator.jwt is not None,
        "open": authenticator.open,
    }
    if state.routing is not None:
        payload.update(state.routing.describe())  # the weights now in force, per model
    return web.Response(body=orjson.dumps(payload), content_type=JSON)


async def list_targets(request: web.Request) -> web.Response:
    """Not in OpenAI's API: each backend's breaker state, load and last error.
    Backends' names and errors are for operators: once the gateway has keys,
    only an admin key may read them."""
    require_admin(request, unless_open=True)
    targets = request.app[STATE].router.targets()
    now = time.monotonic()
    payload = {
        "object": "list",
        "data": [
            {
                "id": name,
                "available": target.available(),
                **target.health.snapshot(),
                "engine_load": None if target.load is None else target.load.snapshot(now),
            }
            for name, target in targets.items()
        ],
    }
    return web.Response(body=orjson.dumps(payload), content_type=JSON)


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/v1/gateway/targets", list_targets)
    app.router.add_get("/v1/gateway/keys/me", my_key)
    app.router.add_get("/v1/gateway/keys", list_keys)
    app.router.add_post("/v1/gateway/reload", reload_config)
