"""The Files API: uploads kept under ``files_dir``, one blob per file, their
metadata in the catalog.

An upload streams to a temporary file (the event loop never holds the whole
file, nor waits on the disk) and is counted as it arrives: past
``max_file_bytes`` it is dropped with a 413; a caller past its
``max_files_per_caller`` or ``max_bytes_per_caller`` gets a 400 naming
``file``. Deleting a file removes it from every vector store it was in,
vectors included.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from adapters.errors import InvalidRequestError, PayloadTooLargeError
from gateway.config.knowledge import KnowledgeConfig
from gateway.knowledge.catalog import Catalog
from gateway.knowledge.objects import deleted, file_object, new_id, not_found, now, page

Body = dict[str, Any]
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
RemoveFromStores = Callable[[str, str], Awaitable[None]]  # (store id, file id)


@dataclass(slots=True)
class Upload:
    """A file received, not yet registered."""

    file_id: str
    size: int


class Files:
    def __init__(self, config: KnowledgeConfig, catalog: Catalog, blobs: Path) -> None:
        self.config = config
        self.catalog = catalog
        self.blobs = blobs
        self.remove_from_store: RemoveFromStores | None = None  # set by the vector stores

    def blob(self, file_id: str) -> Path:
        return self.blobs / file_id

    def check_purpose(self, purpose: str) -> None:
        if purpose not in PURPOSES:
            allowed = ", ".join(f"'{p}'" for p in PURPOSES)
            raise InvalidRequestError(
                f"Invalid value for 'purpose': '{purpose}' (one of {allowed}).",
                param="purpose",
                code="invalid_value",
            )

    async def receive(self, owner: str, chunks: AsyncIterator[bytes]) -> Upload:
        """Write an upload's bytes (as they arrive) to its blob, within the limits."""
        count, used = await self.catalog.call(self.catalog.file_usage, owner)
        if count >= self.config.max_files_per_caller:
            raise InvalidRequestError(
                f"This caller keeps {count} files, the limit: delete some first.",
                param="file",
                code="files_limit_exceeded",
            )
        upload = Upload(new_id("file-"), 0)
        partial = self.blobs / f".{upload.file_id}.part"
        room = self.config.max_bytes_per_caller - used
        handle: IO[bytes] = await asyncio.to_thread(open, partial, "wb")
        try:
            async for chunk in chunks:
                upload.size += len(chunk)
                if upload.size > self.config.max_file_bytes:
                    raise PayloadTooLargeError(
                        f"File is larger than the limit of {self.config.max_file_bytes} bytes.",
                        param="file",
                        code="file_too_large",
                    )
                if upload.size > room:
                    raise InvalidRequestError(
                        "This file would take the caller past its limit of "
                        f"{self.config.max_bytes_per_caller} bytes of files.",
                        param="file",
                        code="bytes_limit_exceeded",
                    )
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, partial, self.blob(upload.file_id))
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
        return upload

    async def register(
        self,
        owner: str,
        upload: Upload,
        filename: str,
        purpose: str,
        expires_after: int | None = None,
    ) -> Body:
        """Keep a received upload as a file of ``owner``."""
        self.check_purpose(purpose)
        created = now()
        row = {
            "id": upload.file_id,
            "owner": owner,
            "filename": filename,
            "purpose": purpose,
            "bytes": upload.size,
            "created_at": created,
            "expires_at": None if expires_after is None else created + expires_after,
        }
        await self.catalog.call(self.catalog.add_file, row)
        return file_object(row)

    async def discard(self, upload: Upload) -> None:
        """Drop a received upload that was not registered."""
        await asyncio.to_thread(self.blob(upload.file_id).unlink, missing_ok=True)

    async def _row(self, owner: str, file_id: str) -> Body:
        row = await self.catalog.call(self.catalog.get_file, owner, file_id)
        if row is None:
            raise not_found("file", file_id, "file_id")
        return row

    async def retrieve(self, owner: str, file_id: str) -> Body:
        return file_object(await self._row(owner, file_id))

    async def content(self, owner: str, file_id: str) -> tuple[Path, Body]:
        """The blob to send, and the file's object."""
        return self.blob(file_id), await self._row(owner, file_id)

    async def list(
        self, owner: str, purpose: str | None, after: str | None, limit: int, order: str
    ) -> Body:
        rows, more = await self.catalog.call(
            self.catalog.list_files, owner, purpose, after, limit, order
        )
        return page([file_object(r) for r in rows], more)

    async def delete(self, owner: str, file_id: str) -> Body:
        await self._row(owner, file_id)
        stores = await self.catalog.call(self.catalog.stores_of, file_id)
        if self.remove_from_store is not None:
            for store_id in stores:
                await self.remove_from_store(store_id, file_id)
        await self.catalog.call(self.catalog.delete_file, owner, file_id)
        await asyncio.to_thread(self.blob(file_id).unlink, missing_ok=True)
        return deleted(file_id, "file")
