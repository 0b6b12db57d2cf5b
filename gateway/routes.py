"""HTTP routes: parse, call the router, serialize. Nothing else lives here."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.access import FreeGrant, Grant
from gateway.auth import PRINCIPAL
from gateway.config_loader import format_loc
from gateway.errors import InvalidRequestError, ModelNotFoundError, PayloadTooLargeError
from gateway.metrics import CONTENT_TYPE
from gateway.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
)
from gateway.responses import SSE_HEADERS, StreamRelay, finish_result
from gateway.router import Call, Operation
from gateway.state import RECORD, STATE, AppState

RequestModel = TypeVar("RequestModel", bound=BaseModel)
JSON = "application/json"


async def read_request(
    request: web.Request, model: type[RequestModel]
) -> tuple[dict[str, Any], RequestModel]:
    """The client's JSON object, and its validated view (errors name the field)."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.app[STATE].config.server.max_body_bytes
        raise PayloadTooLargeError(
            f"Request body is larger than the limit of {limit} bytes."
        ) from exc
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. The body must be valid JSON "
            f"({exc.msg} at position {exc.pos})."
        ) from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    return body, parsed


def validation_error(exc: ValidationError) -> InvalidRequestError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    param = format_loc(first["loc"])
    if first["type"] == "missing":
        message = f"Missing required parameter: '{param}'."
    else:
        message = f"Invalid value for '{param}': {first['msg']}."
    if len(errors) > 1:
        message += (
            f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} in the request.)"
        )
    return InvalidRequestError(message, param=param, code="invalid_value")


def _call(request: web.Request, operation: Operation, body: dict[str, Any]) -> Call:
    user = body.get("user")
    session = request.headers.get("X-Session-ID") or (user if isinstance(user, str) else None)
    return Call(operation, body, session_key=session)


async def _generate(
    request: web.Request,
    operation: Operation,
    model_cls: type[ChatCompletionRequest] | type[CompletionRequest],
) -> web.StreamResponse:
    state = request.app[STATE]
    record = request[RECORD]
    body, parsed = await read_request(request, model_cls)
    record.model = parsed.model
    record.request_body = body
    async with state.access.admit(request, parsed, body) as grant:
        return await _answer(request, operation, parsed, body, grant)


async def _answer(
    request: web.Request,
    operation: Operation,
    parsed: ChatCompletionRequest | CompletionRequest,
    body: dict[str, Any],
    grant: Grant | FreeGrant,
) -> web.StreamResponse:
    """Call the model for an admitted request; its usage goes to the grant."""
    state = request.app[STATE]
    record = request[RECORD]
    model = state.router.resolve(parsed.model)
    if not parsed.stream:
        result, target = await state.router.call(model, _call(request, operation, body))
        record.target = target.name
        result = finish_result(result, parsed.model, body, state.tokens)
        record.completion = result
        usage = result.get("usage") or {}
        grant.record_usage(usage)
        record.prompt_tokens = usage.get("prompt_tokens")
        record.completion_tokens = usage.get("completion_tokens")
        return web.Response(
            body=orjson.dumps(result),
            content_type=JSON,
            headers={
                **grant.headers,
                "X-Request-ID": record.request_id,
                "X-Gateway-Target": target.name,
            },
        )

    include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
    # Always ask the backend for usage so accounting never has to guess;
    # the relay drops it again when the client did not ask.
    options = {**(body.get("stream_options") or {}), "include_usage": True}
    call = _call(request, operation, {**body, "stream_options": options})
    first, chunks, target = await state.router.open_stream(model, call)
    async with aclosing(chunks):
        record.target = target.name
        record.ttft = time.perf_counter() - record.started
        response = web.StreamResponse(
            headers={
                **SSE_HEADERS,
                **grant.headers,
                "X-Request-ID": record.request_id,
                "X-Gateway-Target": target.name,
            }
        )
        await response.prepare(request)
        relay = StreamRelay(parsed.model, body, include_usage, record, state.tokens)
        try:
            await relay.run(response, first, chunks)
        finally:
            grant.record_stream(relay.usage, relay.texts)
    return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, "chat", ChatCompletionRequest)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, "completions", CompletionRequest)


async def embeddings(request: web.Request) -> web.Response:
    state = request.app[STATE]
    record = request[RECORD]
    body, parsed = await read_request(request, EmbeddingRequest)
    record.model = parsed.model
    record.request_body = body
    async with state.access.admit(request, parsed, body) as grant:
        model = state.router.resolve(parsed.model)
        result, target = await state.router.call(model, _call(request, "embeddings", body))
        record.target = target.name
        result["model"] = parsed.model
        usage = result.get("usage")
        if not isinstance(usage, dict):
            prompt = state.tokens.count_prompt(body["input"])
            result["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
        grant.record_usage(result["usage"])
    record.prompt_tokens = result["usage"].get("prompt_tokens")
    return web.Response(
        body=orjson.dumps(result),
        content_type=JSON,
        headers={
            **grant.headers,
            "X-Request-ID": record.request_id,
            "X-Gateway-Target": target.name,
        },
    )


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


async def health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type=JSON)


async def ready(request: web.Request) -> web.Response:
    """Readiness, per model and target. 200 "ready" when every model can be
    served, 200 "degraded" when some can (so one broken engine does not take
    every replica out of a load balancer), 503 "not_ready" when none can.
    ``?strict`` answers 503 unless every model can be served."""
    state = request.app[STATE]
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
    if state.engines is not None and state.engines.manager is not None:
        payload["engines"] = state.engines.snapshot()
    return web.Response(body=orjson.dumps(payload), content_type=JSON, status=code)


async def _target_ready(target: Any) -> bool:
    return bool(target.available()) and await target.adapter.health()


async def list_targets(request: web.Request) -> web.Response:
    """Not in OpenAI's API: each backend's breaker state, load and last error."""
    targets = request.app[STATE].router.targets()
    payload = {
        "object": "list",
        "data": [
            {"id": name, "available": target.available(), **target.health.snapshot()}
            for name, target in targets.items()
        ],
    }
    return web.Response(body=orjson.dumps(payload), content_type=JSON)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition: the gateway's series and its engines' (gateway.metrics)."""
    body = await request.app[STATE].telemetry.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/v1/gateway/targets", list_targets)
    app.router.add_get("/metrics", metrics)
