"""The Vector Stores API: ``/v1/vector_stores`` (create, list), ``/{id}``
(retrieve, update, delete), ``/{id}/files`` (add, list), ``/{id}/files/{file_id}``
(retrieve, update attributes, remove), ``/{id}/files/{file_id}/content``,
``/{id}/file_batches`` (create), ``/{id}/file_batches/{batch_id}`` (retrieve),
``.../cancel``, ``.../files``, and ``/{id}/search``."""

from __future__ import annotations

from aiohttp import web

from gateway.api.knowledge_protocol import (
    FileBatchCreateRequest,
    StoreListQuery,
    VectorStoreCreateRequest,
    VectorStoreFileCreateRequest,
    VectorStoreFileUpdateRequest,
    VectorStoreSearchRequest,
    VectorStoreUpdateRequest,
)
from gateway.api.parsing import read_request
from gateway.api.routes.files import knowledge, owner, query
from gateway.api.routes.responses import json_response
from gateway.knowledge.stores import VectorStores

BASE = "/v1/vector_stores/{store_id}"


def _stores(request: web.Request) -> VectorStores:
    return knowledge(request).stores


def _id(request: web.Request) -> str:
    return request.match_info["store_id"]


def _list_query(request: web.Request) -> StoreListQuery:
    parsed = query(request, StoreListQuery)
    assert isinstance(parsed, StoreListQuery)
    return parsed


async def create_store(request: web.Request) -> web.Response:
    stores = _stores(request)
    body, _ = await read_request(request, VectorStoreCreateRequest)
    return json_response(await stores.create(owner(request), body), request)


async def list_stores(request: web.Request) -> web.Response:
    stores, q = _stores(request), _list_query(request)
    listed = await stores.list(owner(request), q.cursor, q.limit, q.order)
    return json_response(listed, request)


async def retrieve_store(request: web.Request) -> web.Response:
    found = await _stores(request).retrieve(owner(request), _id(request))
    return json_response(found, request)


async def update_store(request: web.Request) -> web.Response:
    stores = _stores(request)
    body, _ = await read_request(request, VectorStoreUpdateRequest)
    return json_response(await stores.update(owner(request), _id(request), body), request)


async def delete_store(request: web.Request) -> web.Response:
    done = await _stores(request).delete(owner(request), _id(request))
    return json_response(done, request)


async def add_file(request: web.Request) -> web.Response:
    stores = _stores(request)
    body, _ = await read_request(request, VectorStoreFileCreateRequest)
    return json_response(await stores.add_file(owner(request), _id(request), body), request)


async def list_files(request: web.Request) -> web.Response:
    stores, q = _stores(request), _list_query(request)
    listed = await stores.list_files(
        owner(request), _id(request), q.filter, q.cursor, q.limit, q.order
    )
    return json_response(listed, request)


async def retrieve_file(request: web.Request) -> web.Response:
    file_id = request.match_info["file_id"]
    found = await _stores(request).get_file(owner(request), _id(request), file_id)
    return json_response(found, request)


async def update_file(request: web.Request) -> web.Response:
    stores = _stores(request)
    body, _ = await read_request(request, VectorStoreFileUpdateRequest)
    file_id = request.match_info["file_id"]
    updated = await stores.update_file(owner(request), _id(request), file_id, body["attributes"])
    return json_response(updated, request)


async def delete_file(request: web.Request) -> web.Response:
    file_id = request.match_info["file_id"]
    done = await _stores(request).delete_file(owner(request), _id(request), file_id)
    return json_response(done, request)


async def file_content(request: web.Request) -> web.Response:
    file_id = request.match_info["file_id"]
    found = await _stores(request).file_content(owner(request), _id(request), file_id)
    return json_response(found, request)


async def create_batch(request: web.Request) -> web.Response:
    stores = _stores(request)
    body, _ = await read_request(request, FileBatchCreateRequest)
    return json_response(await stores.create_batch(owner(request), _id(request), body), request)


async def retrieve_batch(request: web.Request) -> web.Response:
    batch_id = request.match_info["batch_id"]
    found = await _stores(request).get_batch(owner(request), _id(request), batch_id)
    return json_response(found, request)


async def cancel_batch(request: web.Request) -> web.Response:
    batch_id = request.match_info["batch_id"]
    done = await _stores(request).cancel_batch(owner(request), _id(request), batch_id)
    return json_response(done, request)


async def list_batch_files(request: web.Request) -> web.Response:
    stores, q = _stores(request), _list_query(request)
    await stores.get_batch(owner(request), _id(request), request.match_info["batch_id"])
    listed = await stores.list_files(
        owner(request),
        _id(request),
        q.filter,
        q.cursor,
        q.limit,
        q.order,
        batch_id=request.match_info["batch_id"],
    )
    return json_response(listed, request)


async def search(request: web.Request) -> web.Response:
    base = knowledge(request)
    body, parsed = await read_request(request, VectorStoreSearchRequest)
    queries = [parsed.query] if isinstance(parsed.query, str) else list(parsed.query)
    ranking = parsed.ranking_options
    results = await base.search.search(
        owner(request),
        [_id(request)],
        queries,
        parsed.max_num_results,
        body.get("filters"),
        None if ranking is None else ranking.score_threshold,
        param="vector_store_id",
    )
    page = {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": [result.as_search_result() for result in results],
        "has_more": False,
        "next_page": None,
    }
    return json_response(page, request)


def add_vector_store_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/v1/vector_stores", create_store)
    router.add_get("/v1/vector_stores", list_stores)
    router.add_get(BASE, retrieve_store)
    router.add_post(BASE, update_store)
    router.add_delete(BASE, delete_store)
    router.add_post(BASE + "/files", add_file)
    router.add_get(BASE + "/files", list_files)
    router.add_get(BASE + "/files/{file_id}", retrieve_file)
    router.add_post(BASE + "/files/{file_id}", update_file)
    router.add_delete(BASE + "/files/{file_id}", delete_file)
    router.add_get(BASE + "/files/{file_id}/content", file_content)
    router.add_post(BASE + "/file_batches", create_batch)
    router.add_get(BASE + "/file_batches/{batch_id}", retrieve_batch)
    router.add_post(BASE + "/file_batches/{batch_id}/cancel", cancel_batch)
    router.add_get(BASE + "/file_batches/{batch_id}/files", list_batch_files)
    router.add_post(BASE + "/search", search)
