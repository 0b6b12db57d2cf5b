"""What the fake vendor servers (Anthropic, Gemini, Azure) share with the fake
OpenAI server: the state dict, the control routes (``/_requests``,
``/_events``, ``/_reset``, ``/_faults``) and request recording."""

from __future__ import annotations

import random
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai_server import STATE, State, control


def new_app(name: str, api_key: str) -> web.Application:
    app = web.Application()
    app[STATE] = {
        "name": name,
        "api_key": api_key,
        "usage": True,
        "requests": [],
        "events": [],
        "faults": [],
        "fail_ratio": 0.0,
        "rng": random.Random(0),
    }
    app.router.add_get("/_requests", control)
    app.router.add_get("/_events", control)
    app.router.add_post("/_reset", control)
    app.router.add_post("/_faults", control)
    return app


async def record(request: web.Request) -> tuple[State, Any]:
    """Keep what arrived (path, query, headers, JSON body) for the tests to inspect."""
    state = request.app[STATE]
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    state["requests"].append(
        {
            "path": request.path,
            "query": dict(request.query),
            "headers": {str(k).lower(): v for k, v in request.headers.items()},
            "body": body,
        }
    )
    return state, body


def next_fault(state: State) -> dict[str, Any]:
    return state["faults"].pop(0) if state["faults"] else {}


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(payload), content_type="application/json", headers=headers
    )
