"""A fake of Azure OpenAI's data-plane API for tests.

Run it as a process:
``python -m tests.fakes.azure_server --port P --api-key K --deployments a,b [--name N]``.

Routes, as Azure lays them out:
``POST /openai/deployments/{deployment}/{chat/completions|completions|embeddings}?api-version=V``,
the version-less v1 API ``POST /openai/v1/{...}`` (the deployment in the body's
``model``), and ``GET /openai/models?api-version=V`` / ``GET /openai/v1/models``.

It checks what Azure checks and answers errors in Azure's shape
(``{"error": {"code", "message"}}``): the key, in the ``api-key`` header or as
``Authorization: Bearer`` (401), the ``api-version`` query on dated routes
(400 MissingApiVersionParameter), the deployment (404 DeploymentNotFound).
Accepted requests are answered by the fake OpenAI server's handlers (same
text, usage, streams and faults), since Azure speaks OpenAI's format.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from tests.fakes import openai_server
from tests.fakes.openai_server import STATE
from tests.fakes.vendor import json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEPLOYMENTS = web.AppKey("deployments", frozenset)
_VERSIONS = {"2024-06-01", "2024-10-21", "2025-04-01-preview"}


def error(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status)


def _authorized(request: web.Request) -> bool:
    key = request.app[STATE]["api_key"]
    return bool(
        request.headers.get("api-key") == key
        or request.headers.get("Authorization") == f"Bearer {key}"
    )


def _refusal(request: web.Request, deployment: str | None) -> web.Response | None:
    if not _authorized(request):
        return error(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource.",
        )
    dated = not request.path.startswith("/openai/v1/")
    version = request.query.get("api-version")
    if dated and version is None:
        return error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if dated and version not in _VERSIONS:
        return error(404, "404", "Resource not found")
    if deployment is not None and deployment not in request.app[DEPLOYMENTS]:
        return error(
            404,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist. If you created the deployment "
            "within the last 5 minutes, please wait a moment and try again.",
        )
    return None


def deployment_route(answer: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        refused = _refusal(request, request.match_info["deployment"])
        return refused or await answer(request)

    return handle


def v1_route(answer: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())  # aiohttp keeps it for the handler
        except orjson.JSONDecodeError:
            body = None
        deployment = body.get("model") if isinstance(body, dict) else None
        refused = _refusal(request, str(deployment))
        return refused or await answer(request)

    return handle


async def models(request: web.Request) -> web.StreamResponse:
    refused = _refusal(request, None)
    if refused is not None:
        return refused
    data = [{"id": name, "object": "model"} for name in sorted(request.app[DEPLOYMENTS])]
    return json_response({"object": "list", "data": data})


def make_app(name: str, api_key: str, deployments: frozenset[str]) -> web.Application:
    app = openai_server.make_app(name)
    app[STATE]["api_key"] = api_key
    app[DEPLOYMENTS] = deployments
    routes = {
        "chat/completions": openai_server.generate,
        "completions": openai_server.generate,
        "embeddings": openai_server.embeddings,
    }
    for path, answer in routes.items():
        app.router.add_post(f"/openai/deployments/{{deployment}}/{path}", deployment_route(answer))
        app.router.add_post(f"/openai/v1/{path}", v1_route(answer))
    app.router.add_get("/openai/models", models)
    app.router.add_get("/openai/v1/models", models)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--deployments", required=True, help="comma-separated names")
    parser.add_argument("--name", default="azure")
    args = parser.parse_args()
    app = make_app(args.name, args.api_key, frozenset(args.deployments.split(",")))
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
