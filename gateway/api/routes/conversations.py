"""The Conversations API: ``POST /v1/conversations``, ``GET``/``POST``/``DELETE
/v1/conversations/{id}``, ``GET``/``POST /v1/conversations/{id}/items`` and
``GET``/``DELETE /v1/conversations/{id}/items/{item_id}``."""

from __future__ import annotations

from aiohttp import web

from gateway.api.parsing import read_request
from gateway.api.responses_protocol import (
    ConversationCreateRequest,
    ConversationItemsRequest,
    ConversationUpdateRequest,
    wire_validation_error,
)
from gateway.api.routes.responses import caller, json_response, list_query
from gateway.api.state import STATE
from gateway.responses.conversations import ConversationsService


def _service(request: web.Request) -> ConversationsService:
    return request.app[STATE].responses.conversations


def _id(request: web.Request) -> str:
    return request.match_info["conversation_id"]


async def create_conversation(request: web.Request) -> web.Response:
    body, _ = await read_request(request, ConversationCreateRequest, wire_validation_error)
    return json_response(await _service(request).create(caller(request), body), request)


async def retrieve_conversation(request: web.Request) -> web.Response:
    found = await _service(request).retrieve(caller(request), _id(request))
    return json_response(found, request)


async def update_conversation(request: web.Request) -> web.Response:
    _, parsed = await read_request(request, ConversationUpdateRequest, wire_validation_error)
    updated = await _service(request).update(caller(request), _id(request), parsed.metadata)
    return json_response(updated, request)


async def delete_conversation(request: web.Request) -> web.Response:
    deleted = await _service(request).delete(caller(request), _id(request))
    return json_response(deleted, request)


async def list_items(request: web.Request) -> web.Response:
    query = list_query(request)
    listed = await _service(request).list_items(
        caller(request), _id(request), query.after, query.limit, query.order
    )
    return json_response(listed, request)


async def create_items(request: web.Request) -> web.Response:
    body, _ = await read_request(request, ConversationItemsRequest, wire_validation_error)
    added = await _service(request).add_items(caller(request), _id(request), body["items"])
    return json_response(added, request)


async def retrieve_item(request: web.Request) -> web.Response:
    item_id = request.match_info["item_id"]
    found = await _service(request).get_item(caller(request), _id(request), item_id)
    return json_response(found, request)


async def delete_item(request: web.Request) -> web.Response:
    item_id = request.match_info["item_id"]
    conversation = await _service(request).delete_item(caller(request), _id(request), item_id)
    return json_response(conversation, request)


def add_conversation_routes(app: web.Application) -> None:
    base = "/v1/conversations/{conversation_id}"
    app.router.add_post("/v1/conversations", create_conversation)
    app.router.add_get(base, retrieve_conversation)
    app.router.add_post(base, update_conversation)
    app.router.add_delete(base, delete_conversation)
    app.router.add_get(base + "/items", list_items)
    app.router.add_post(base + "/items", create_items)
    app.router.add_get(base + "/items/{item_id}", retrieve_item)
    app.router.add_delete(base + "/items/{item_id}", delete_item)
