"""``GET /v1/models`` and ``GET /v1/models/{id}``: the public model names the
caller may use."""

from __future__ import annotations

from aiohttp import web

from adapters.errors import ModelNotFoundError
from gateway.access.auth import PRINCIPAL
from gateway.api.protocol import ModelCard, ModelList
from gateway.api.state import STATE, AppState

JSON = "application/json"


def _card(state: AppState, name: str) -> ModelCard:
    return ModelCard(id=name, created=state.router.models[name].created)


async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    allowed = request[PRINCIPAL].access.allows
    listing = ModelList(data=[_card(state, name) for name in state.router.models if allowed(name)])
    return web.Response(body=listing.model_dump_json(), content_type=JSON)


async def get_model(request: web.Request) -> web.Response:
    state = request.app[STATE]
    name = request.match_info["model"]
    if name not in state.router.models:
        raise ModelNotFoundError(
            f"The model '{name}' does not exist. Available models: "
            f"{', '.join(sorted(state.router.models)) or 'none'}.",
            param="model",
        )
    return web.Response(body=_card(state, name).model_dump_json(), content_type=JSON)


def add_model_routes(app: web.Application) -> None:
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
