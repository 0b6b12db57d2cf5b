"""Reading a request body: JSON, then the protocol model; every failure is a
400 whose ``param`` names the field at fault (never a 422, never a 500)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from adapters.errors import InvalidRequestError, PayloadTooLargeError
from gateway.api.state import STATE
from gateway.config.loader import format_loc

RequestModel = TypeVar("RequestModel", bound=BaseModel)


async def read_request(
    request: web.Request,
    model: type[RequestModel],
    errors: Callable[[ValidationError], InvalidRequestError] | None = None,
) -> tuple[dict[str, Any], RequestModel]:
    """The client's JSON object, and its validated view (errors name the field;
    ``errors`` turns a validation error into the 400, ``validation_error`` by default)."""
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
        raise (errors or validation_error)(exc) from exc
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
