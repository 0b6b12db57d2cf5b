"""Ingestion: a file added to a vector store, read, chunked, embedded and
indexed in the background; its status goes ``in_progress`` -> ``completed``,
or ``failed`` with ``last_error`` (``unsupported_file``, ``invalid_file``,
``server_error``) and none of its vectors left behind.

At most ``ingest_concurrency`` files are ingested at once. Reading and
chunking run on a worker thread; embeddings go through the router in
batches, each batch indexed as it comes. Removing a file from a store
(``cancel``) stops its ingestion and waits for a Milvus write under way, so
the vectors deleted after it are all there were. A gateway stopped mid-file
leaves it ``in_progress``; the next start ingests it again (``resume``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from adapters.errors import GatewayError
from gateway.knowledge.catalog import Catalog
from gateway.knowledge.chunking import Chunking, chunk_text
from gateway.knowledge.embedding import Embedder
from gateway.knowledge.parsing import InvalidFile, UnsupportedFile, extract_text
from gateway.knowledge.vectors import MAX_TEXT_BYTES, VectorIndex

Key = tuple[str, str]  # (store id, file id)


class Ingestion:
    def __init__(
        self,
        catalog: Catalog,
        index: VectorIndex,
        embedder: Embedder,
        blobs: Path,
        encoding: Any,
        concurrency: int,
        log: Any,
    ) -> None:
        self.catalog = catalog
        self.index = index
        self.embedder = embedder
        self.blobs = blobs
        self.encoding = encoding  # a callable giving the tiktoken encoding (loaded lazily)
        self.log = log
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[Key, asyncio.Task[None]] = {}

    def start(self, store_id: str, file_id: str, chunking: Chunking) -> None:
        """Ingest a file whose row (``in_progress``) is in the catalog."""
        key = (store_id, file_id)
        task = asyncio.get_running_loop().create_task(self._run(key, chunking))
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: Key, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    def busy(self, key: Key) -> bool:
        return key in self._tasks

    async def cancel(self, key: Key) -> None:
        """Stop a file's ingestion and wait until it has stopped writing."""
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def resume(self) -> int:
        """Ingest again the files a stop left ``in_progress`` (before the app
        serves: after, a file just added would be among them)."""
        rows = await self.catalog.call(self.catalog.unfinished)
        for row in rows:
            static = row["chunking"]["static"]
            chunking = Chunking(static["max_chunk_size_tokens"], static["chunk_overlap_tokens"])
            self.start(row["store_id"], row["file_id"], chunking)
        return len(rows)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # ---- one file ------------------------------------------------------------------

    async def _run(self, key: Key, chunking: Chunking) -> None:
        store_id, file_id = key
        async with self._slots:
            try:
                await self._settled(self.index.delete(store_id, file_id))  # a previous attempt's
                filename = await self.catalog.call(self.catalog.get_filename, file_id)
                chunks = await asyncio.to_thread(self._chunks, file_id, filename, chunking)
                if not chunks:
                    raise InvalidFile("The file has no text to search.")
                usage = await self._index(store_id, file_id, chunks)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is the file's last_error
                await self._failed(key, exc)
                return
            changes = {"status": "completed", "usage_bytes": usage, "chunks": len(chunks)}
            await self.catalog.call(self.catalog.update_store_file, store_id, file_id, changes)

    def text(self, file_id: str, filename: str | None) -> str:
        """A file's searchable text (on a worker thread: reads and parses)."""
        return extract_text(filename or file_id, (self.blobs / file_id).read_bytes())

    def _chunks(self, file_id: str, filename: str | None, chunking: Chunking) -> list[str]:
        chunks = chunk_text(self.text(file_id, filename), self.encoding(), chunking)
        for chunk in chunks:
            if len(chunk.encode("utf-8")) > MAX_TEXT_BYTES:
                raise InvalidFile("A chunk is larger than 65535 bytes: use smaller chunks.")
        return chunks

    async def _index(self, store_id: str, file_id: str, chunks: list[str]) -> int:
        """Embed and insert the chunks, a batch at a time; the bytes they use."""
        usage = 0
        dimension = 0
        step = self.embedder.batch
        for start in range(0, len(chunks), step):
            part = chunks[start : start + step]
            vectors = await self.embedder.embed(part, wait=True)
            rows = [
                {
                    "id": f"{store_id}/{file_id}/{start + n}",
                    "store_id": store_id,
                    "file_id": file_id,
                    "text": text,
                    "vector": vector,
                }
                for n, (text, vector) in enumerate(zip(part, vectors, strict=True))
            ]
            dimension = len(vectors[0])
            await self._settled(self.index.insert(rows, dimension))
            usage += sum(
                len(t.encode("utf-8")) + 4 * len(v) for t, v in zip(part, vectors, strict=True)
            )
        await self._settled(self.index.seal(dimension))
        return usage

    @staticmethod
    async def _settled(work: Any) -> None:
        """Await a Milvus write to its end even when cancelled meanwhile (a
        thread cannot be stopped: what it writes must be there before the
        canceller deletes)."""
        future = asyncio.ensure_future(work)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise

    async def _failed(self, key: Key, exc: BaseException) -> None:
        store_id, file_id = key
        if isinstance(exc, UnsupportedFile):
            error = {"code": "unsupported_file", "message": str(exc)}
        elif isinstance(exc, InvalidFile):
            error = {"code": "invalid_file", "message": str(exc)}
        elif isinstance(exc, GatewayError):
            error = {
                "code": "server_error",
                "message": f"The file could not be indexed: {exc.message}",
            }
        else:
            self.log.exception("knowledge: ingestion failed", store=store_id, file=file_id)
            error = {"code": "server_error", "message": "The file could not be indexed."}
        try:
            await self._settled(self.index.delete(store_id, file_id))
        except Exception:  # the index is down too: the row still says why the file failed
            self.log.exception("knowledge: cleanup failed", store=store_id, file=file_id)
        changes = {"status": "failed", "last_error": error, "usage_bytes": 0, "chunks": 0}
        await self.catalog.call(self.catalog.update_store_file, store_id, file_id, changes)
