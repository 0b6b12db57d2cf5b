"""The Vector Stores API: stores, their files and file batches, per owner.

Adding a file to a store (alone, at creation, or in a batch) records it
``in_progress`` and starts its ingestion (``gateway.knowledge.ingest``);
``file_counts`` and ``usage_bytes`` are read from the files' rows, so they
are current at every read. Removing a file from a store, or deleting the
store, stops ingestion and deletes the vectors. Bodies come validated
(``gateway.api.knowledge_protocol``); ids of other owners are not found.
"""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.errors import InvalidRequestError
from gateway.knowledge.catalog import Catalog
from gateway.knowledge.chunking import strategy
from gateway.knowledge.ingest import Ingestion
from gateway.knowledge.objects import (
    batch_object,
    deleted,
    new_id,
    not_found,
    now,
    page,
    store_file_object,
    store_object,
)
from gateway.knowledge.parsing import InvalidFile, UnsupportedFile
from gateway.knowledge.vectors import VectorIndex

Body = dict[str, Any]
Cursor = tuple[str, str] | None  # ("after" | "before", id)


class VectorStores:
    def __init__(
        self,
        catalog: Catalog,
        index: VectorIndex,
        ingestion: Ingestion,
        window: int | None,
        max_stores: int,
    ) -> None:
        self.catalog = catalog
        self.index = index
        self.ingestion = ingestion
        self.window = window  # the embedding model's tokens, for auto chunking
        self.max_stores = max_stores

    # ---- stores --------------------------------------------------------------------

    async def _store(self, owner: str, store_id: str) -> Body:
        row = await self.catalog.call(self.catalog.get_store, owner, store_id)
        if row is None:
            raise not_found("vector store", store_id, "vector_store_id")
        return row

    async def _object(self, row: Body) -> Body:
        counts, usage = await self.catalog.call(self.catalog.counts, row["id"])
        return store_object(row, counts, usage)

    async def create(self, owner: str, body: Body) -> Body:
        if await self.catalog.call(self.catalog.count_stores, owner) >= self.max_stores:
            raise InvalidRequestError(
                f"This caller keeps {self.max_stores} vector stores, the limit: delete some first.",
                code="vector_stores_limit_exceeded",
            )
        for index, file_id in enumerate(body.get("file_ids") or ()):
            await self._file(owner, file_id, f"file_ids[{index}]")
        created = now()
        row = {
            "id": new_id("vs_"),
            "owner": owner,
            "name": body.get("name") or "",
            "description": body.get("description"),
            "created_at": created,
            "last_active_at": created,
            "metadata": body.get("metadata") or {},
            "expires_after": body.get("expires_after"),
            "chunking": body.get("chunking_strategy"),
        }
        await self.catalog.call(self.catalog.add_store, row)
        for file_id in body.get("file_ids") or ():
            await self._attach(owner, row, file_id, {}, None, None)
        return await self._object(row)

    async def retrieve(self, owner: str, store_id: str) -> Body:
        return await self._object(await self._store(owner, store_id))

    async def list(self, owner: str, cursor: Cursor, limit: int, order: str) -> Body:
        rows, more = await self.catalog.call(self.catalog.list_stores, owner, cursor, limit, order)
        return page([await self._object(r) for r in rows], more)

    async def update(self, owner: str, store_id: str, body: Body) -> Body:
        await self._store(owner, store_id)
        changes: Body = {k: body[k] for k in ("name", "metadata", "expires_after") if k in body}
        if changes.get("name") is None:
            changes.pop("name", None)
        changes["last_active_at"] = now()
        await self.catalog.call(self.catalog.update_store, owner, store_id, changes)
        return await self.retrieve(owner, store_id)

    async def delete(self, owner: str, store_id: str) -> Body:
        await self._store(owner, store_id)
        rows, _ = await self.catalog.call(
            self.catalog.list_store_files, store_id, "in_progress", None, None, 1_000_000, "asc"
        )
        for row in rows:
            await self.ingestion.cancel((store_id, row["file_id"]))
        await self.index.delete(store_id)
        await self.catalog.call(self.catalog.delete_store, owner, store_id)
        return deleted(store_id, "vector_store.deleted")

    # ---- a store's files ---------------------------------------------------------------

    async def _file(self, owner: str, file_id: str, param: str) -> Body:
        row = await self.catalog.call(self.catalog.get_file, owner, file_id)
        if row is None:
            raise not_found("file", file_id, param)
        return row

    async def _attach(
        self,
        owner: str,
        store: Body,
        file_id: str,
        attributes: Body | None,
        chunking_strategy: Body | None,
        batch_id: str | None,
    ) -> Body:
        """Add a file to a store and start ingesting it (a file already there
        and not failed stays as it is; its attributes are updated)."""
        store_id = store["id"]
        existing = await self.catalog.call(self.catalog.get_store_file, owner, store_id, file_id)
        if existing is not None and existing["status"] in ("in_progress", "completed"):
            if attributes:
                changes = {"attributes": attributes}
                await self.catalog.call(self.catalog.update_store_file, store_id, file_id, changes)
                existing["attributes"] = attributes
            return existing
        chunking = strategy(chunking_strategy or store.get("chunking"), self.window)
        row = {
            "store_id": store_id,
            "file_id": file_id,
            "owner": owner,
            "created_at": now(),
            "status": "in_progress",
            "usage_bytes": 0,
            "last_error": None,
            "attributes": attributes or {},
            "chunking": chunking.describe(),
            "batch_id": batch_id,
            "chunks": 0,
        }
        await self.catalog.call(self.catalog.put_store_file, row)
        self.ingestion.start(store_id, file_id, chunking)
        return row

    async def add_file(self, owner: str, store_id: str, body: Body) -> Body:
        store = await self._store(owner, store_id)
        await self._file(owner, body["file_id"], "file_id")
        row = await self._attach(
            owner,
            store,
            body["file_id"],
            body.get("attributes"),
            body.get("chunking_strategy"),
            None,
        )
        return store_file_object(row)

    async def _store_file(self, owner: str, store_id: str, file_id: str) -> Body:
        await self._store(owner, store_id)
        row = await self.catalog.call(self.catalog.get_store_file, owner, store_id, file_id)
        if row is None:
            raise not_found("file", file_id, "file_id")
        return row

    async def get_file(self, owner: str, store_id: str, file_id: str) -> Body:
        return store_file_object(await self._store_file(owner, store_id, file_id))

    async def update_file(self, owner: str, store_id: str, file_id: str, attributes: Body) -> Body:
        await self._store_file(owner, store_id, file_id)
        changes = {"attributes": attributes or {}}
        await self.catalog.call(self.catalog.update_store_file, store_id, file_id, changes)
        return await self.get_file(owner, store_id, file_id)

    async def list_files(
        self,
        owner: str,
        store_id: str,
        status: str | None,
        cursor: Cursor,
        limit: int,
        order: str,
        batch_id: str | None = None,
    ) -> Body:
        await self._store(owner, store_id)
        rows, more = await self.catalog.call(
            self.catalog.list_store_files, store_id, status, batch_id, cursor, limit, order
        )
        return page([store_file_object(r) for r in rows], more)

    async def remove(self, store_id: str, file_id: str) -> None:
        """Take a file out of a store: its ingestion stopped, its vectors gone."""
        await self.ingestion.cancel((store_id, file_id))
        await self.index.delete(store_id, file_id)
        await self.catalog.call(self.catalog.delete_store_file, store_id, file_id)

    async def delete_file(self, owner: str, store_id: str, file_id: str) -> Body:
        await self._store_file(owner, store_id, file_id)
        await self.remove(store_id, file_id)
        return deleted(file_id, "vector_store.file.deleted")

    async def file_content(self, owner: str, store_id: str, file_id: str) -> Body:
        """The parsed text of a store's file, as one page."""
        await self._store_file(owner, store_id, file_id)
        filename = await self.catalog.call(self.catalog.get_filename, file_id)
        try:
            text = await asyncio.to_thread(self.ingestion.text, file_id, filename)
        except (UnsupportedFile, InvalidFile) as exc:
            raise InvalidRequestError(str(exc), param="file_id", code="invalid_file") from exc
        return {
            "object": "vector_store.file_content.page",
            "data": [{"type": "text", "text": text}],
            "has_more": False,
            "next_page": None,
        }

    # ---- batches -------------------------------------------------------------------

    async def create_batch(self, owner: str, store_id: str, body: Body) -> Body:
        store = await self._store(owner, store_id)
        entries = [
            {"file_id": f, "attributes": body.get("attributes")} for f in body.get("file_ids") or ()
        ]
        entries += body.get("files") or []
        if not entries:
            raise InvalidRequestError(
                "Missing required parameter: 'file_ids' (or 'files').", param="file_ids"
            )
        for index, entry in enumerate(entries):
            await self._file(owner, entry["file_id"], f"file_ids[{index}]")
        batch_id = new_id("vsfb_")
        batch = {"id": batch_id, "store_id": store_id, "owner": owner, "created_at": now()}
        await self.catalog.call(self.catalog.add_batch, {**batch, "cancelled": 0})
        for entry in entries:
            strategy_of = entry.get("chunking_strategy") or body.get("chunking_strategy")
            attributes = entry.get("attributes") or body.get("attributes")
            await self._attach(owner, store, entry["file_id"], attributes, strategy_of, batch_id)
        return await self.get_batch(owner, store_id, batch_id)

    async def get_batch(self, owner: str, store_id: str, batch_id: str) -> Body:
        await self._store(owner, store_id)
        row = await self.catalog.call(self.catalog.get_batch, owner, store_id, batch_id)
        if row is None:
            raise not_found("file batch", batch_id, "batch_id")
        counts, _ = await self.catalog.call(self.catalog.counts, store_id, batch_id)
        return batch_object(row, counts)

    async def cancel_batch(self, owner: str, store_id: str, batch_id: str) -> Body:
        await self.get_batch(owner, store_id, batch_id)
        rows, _ = await self.catalog.call(
            self.catalog.list_store_files, store_id, "in_progress", batch_id, None, 1_000_000, "asc"
        )
        for row in rows:  # stopped first, so none completes after it is marked cancelled
            await self.ingestion.cancel((store_id, row["file_id"]))
            await self.index.delete(store_id, row["file_id"])
        await self.catalog.call(self.catalog.cancel_batch, batch_id)
        return await self.get_batch(owner, store_id, batch_id)
