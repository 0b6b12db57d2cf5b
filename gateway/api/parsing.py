"""Reading a request body: JSON, then the protocol model; every failure is a
400 whose ``param`` names the field at fault (never a 422, never a 500)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from adapters.errors import InvalidRequestError, PayloadTooLargeError
from gateway.api.state import STATE
from gateway.config.loader import format_loc

RequestModel = TypeVar("RequestModel", bound=BaseModel)
# A body this large takes milliseconds per step (parse, validate, count, send):
# the steps give the event loop a turn in between, so /health never waits long.
LARGE_BODY_BYTES = 256 * 1024


async def read_request(
    request: web.Request,
    model: type[RequestModel],
    errors: Callable[[ValidationError], InvalidRequestError] | None = None,
) -> tuple[dict[str, Any], RequestModel]:
    """The client's JSON object, and its validated view (errors name the field;
    ``errors`` turns a validation error into the 400, ``validation_error`` by default)."""
    limits = request.app[STATE].config.server
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLargeError(
            f"Request body is larger than the limit of {limits.max_body_bytes} bytes."
        ) from exc
    body = parse_json_body(raw, limits.max_json_depth)
    if len(raw) > LARGE_BODY_BYTES:
        await asyncio.sleep(0)  # let other requests run between the costly steps
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        raise (errors or validation_error)(exc) from exc
    if len(raw) > LARGE_BODY_BYTES:
        await asyncio.sleep(0)
    return body, parsed


def parse_json_body(raw: bytes, max_depth: int) -> dict[str, Any]:
    """A JSON object nested at most ``max_depth`` deep (deeper could not be
    sent on, and costs every later step more): else a 400 naming the field."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. The body must be valid JSON "
            f"({exc.msg} at position {exc.pos})."
        ) from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    # A body shorter than twice the limit cannot nest that deep; below 64 KiB,
    # neither can one with fewer opening brackets (a cheap count); above, the
    # walk over the parsed containers is the cheaper test.
    if len(raw) > 2 * max_depth and (
        len(raw) > 65536 or raw.count(b"[") + raw.count(b"{") > max_depth
    ):
        for key, value in body.items():
            if _deeper_than(value, max_depth - 1):
                raise InvalidRequestError(
                    f"Invalid value for '{key}': JSON nested deeper than {max_depth} levels.",
                    param=key,
                    code="json_too_deep",
                )
    return body


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value``'s containers nest more than ``limit`` deep (iteratively)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


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
