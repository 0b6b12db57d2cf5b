"""The Files API: ``POST /v1/files`` (multipart: ``file``, ``purpose``,
``expires_after[anchor]``/``[seconds]``), ``GET /v1/files``,
``GET``/``DELETE /v1/files/{id}`` and ``GET /v1/files/{id}/content``.

An upload is streamed from the multipart body to disk, never read whole; a
``Content-Length`` already past ``knowledge.max_file_bytes`` is refused with
a 413 before a byte of the body is read. Without a ``knowledge:`` section
these routes answer 404 saying so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ValidationError

from adapters.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from gateway.api.knowledge_protocol import FileListQuery
from gateway.api.parsing import validation_error
from gateway.api.routes.responses import caller, json_response
from gateway.api.state import RECORD, STATE
from gateway.knowledge.build import KnowledgeBase
from gateway.knowledge.files import Upload

# Multipart framing and the small fields around the file part.
MULTIPART_SLACK = 64 * 1024
FIELD_BYTES = 1024
READ_BYTES = 256 * 1024
EXPIRY_SECONDS = (3_600, 2_592_000)  # OpenAI's bounds on expires_after.seconds


def knowledge(request: web.Request) -> KnowledgeBase:
    found = request.app[STATE].knowledge
    if found is None:
        raise NotFoundError(
            f"{request.path}: the Files and Vector Stores APIs are not enabled on this "
            "gateway (models.yaml has no knowledge: section).",
            code="unknown_url",
        )
    return found


def owner(request: web.Request) -> str:
    return caller(request).owner


def query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_error(exc) from exc


async def _file_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(READ_BYTES):
        yield chunk


async def _field(part: BodyPartReader) -> str:
    data = b""
    while chunk := await part.read_chunk(FIELD_BYTES):
        data += chunk
        if len(data) > FIELD_BYTES:
            raise InvalidRequestError(f"The form field '{part.name}' is too long.", param=part.name)
    return data.decode("utf-8", errors="replace").strip()


async def create_file(request: web.Request) -> web.Response:
    files = knowledge(request).files
    limit = files.config.max_file_bytes
    if request.content_length is not None and request.content_length > limit + MULTIPART_SLACK:
        raise PayloadTooLargeError(
            f"File is larger than the limit of {limit} bytes.", param="file", code="file_too_large"
        )
    if not request.content_type.startswith("multipart/form-data"):
        raise InvalidRequestError(
            "Uploads are multipart/form-data with the fields 'file' and 'purpose'.", param="file"
        )
    who = owner(request)
    form: dict[str, str] = {}
    upload: Upload | None = None
    filename = "upload"
    reader = await request.multipart()
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidRequestError("Nested multipart bodies are not accepted.", param="file")
            if part.name == "file" and upload is None:
                filename = part.filename or filename
                upload = await files.receive(who, _file_chunks(part))
            elif part.name in ("purpose", "expires_after[anchor]", "expires_after[seconds]"):
                form[part.name] = await _field(part)
            else:
                await part.release()
        if upload is None:
            raise InvalidRequestError("Missing required parameter: 'file'.", param="file")
        if "purpose" not in form:
            raise InvalidRequestError("Missing required parameter: 'purpose'.", param="purpose")
        created = await files.register(who, upload, filename, form["purpose"], _expiry(form))
    except BaseException:
        if upload is not None:
            await files.discard(upload)
        raise
    return json_response(created, request)


def _expiry(form: dict[str, str]) -> int | None:
    seconds = form.get("expires_after[seconds]")
    if seconds is None:
        return None
    low, high = EXPIRY_SECONDS
    if not seconds.isdigit() or not low <= int(seconds) <= high:
        raise InvalidRequestError(
            f"Invalid value for 'expires_after.seconds': between {low} and {high}.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    if form.get("expires_after[anchor]", "created_at") != "created_at":
        raise InvalidRequestError(
            "Invalid value for 'expires_after.anchor': 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    return int(seconds)


async def list_files(request: web.Request) -> web.Response:
    parsed = query(request, FileListQuery)
    assert isinstance(parsed, FileListQuery)
    listed = await knowledge(request).files.list(
        owner(request), parsed.purpose, parsed.after, parsed.limit, parsed.order
    )
    return json_response(listed, request)


async def retrieve_file(request: web.Request) -> web.Response:
    found = await knowledge(request).files.retrieve(owner(request), request.match_info["file_id"])
    return json_response(found, request)


async def file_content(request: web.Request) -> web.StreamResponse:
    path, row = await knowledge(request).files.content(
        owner(request), request.match_info["file_id"]
    )
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row['filename'])}",
            "X-Request-ID": request[RECORD].request_id,
        },
    )


async def delete_file(request: web.Request) -> web.Response:
    done = await knowledge(request).files.delete(owner(request), request.match_info["file_id"])
    return json_response(done, request)


def add_file_routes(app: web.Application) -> None:
    app.router.add_post("/v1/files", create_file)
    app.router.add_get("/v1/files", list_files)
    app.router.add_get("/v1/files/{file_id}", retrieve_file)
    app.router.add_delete("/v1/files/{file_id}", delete_file)
    app.router.add_get("/v1/files/{file_id}/content", file_content)
