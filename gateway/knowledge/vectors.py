"""Chunk vectors in Milvus, through pymilvus: Milvus Lite or a server, one code path.

``milvus_uri`` a path: pymilvus runs Milvus Lite on that directory (inside
this process); an ``http(s)://`` URI: a Milvus server or cluster. Either way
the gateway speaks the same client API to it.

One collection holds the chunks of every vector store (per embedding
dimension: ``<collection>_<dim>``), with ``store_id`` as its partition key:
Milvus's own pattern for many tenants. A collection per store would cost a
collection's fixed overhead (segments, an index, a load into memory) for
every small store, hit the server's collection limit, and make a search over
several stores (``file_search`` takes a list) several searches to merge; one
filtered search over one HNSW index does it here. Rows are keyed
``<store>/<file>/<n>``; deleting a file or a store deletes by filter.

pymilvus is synchronous: every call runs on this index's own threads
(``asyncio`` awaits them), so the event loop never waits on Milvus. Milvus
Lite takes one write at a time: its collections number writes and flush
without a lock, and two files' writes at once fail a flush now and then
("current_seq is monotonic"); its writes are serialized here. A server takes
them concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from adapters.errors import UpstreamUnavailableError
from gateway.config.knowledge import KnowledgeConfig

T = TypeVar("T")
MAX_TEXT_BYTES = 65_535  # Milvus's VARCHAR limit
# HNSW: M links per node; ef at build and at search (recall against exact search:
# the benchmark, tests/benchmarks/knowledge.py).
HNSW_M = 16
HNSW_BUILD_EF = 200
HNSW_SEARCH_EF = 128


@dataclass(slots=True, frozen=True)
class Hit:
    store_id: str
    file_id: str
    text: str
    score: float  # cosine similarity


def literal(value: str) -> str:
    """A Milvus string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quoted(values: Sequence[str]) -> str:
    """A Milvus list literal of strings."""
    return "[" + ", ".join(map(literal, values)) + "]"


class VectorIndex:
    def __init__(self, config: KnowledgeConfig, threads: int = 4) -> None:
        self.config = config
        self._client: Any = None
        self._ready: set[str] = set()  # collections known to exist
        self._lock = threading.Lock()
        self._writing: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if config.is_lite else contextlib.nullcontext()
        )
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="knowledge-milvus")

    async def _call(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work`` on a Milvus thread; Milvus' own failures are a 503."""
        from pymilvus.exceptions import MilvusException

        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)
        except MilvusException as exc:
            raise UpstreamUnavailableError(
                f"The vector database failed: {exc.message}", code="vector_store_unavailable"
            ) from exc

    def _connect(self) -> Any:
        with self._lock:
            if self._client is None:
                # Imported here: a gateway without knowledge: never loads pymilvus.
                from pymilvus import MilvusClient

                uri = self.config.milvus_uri
                if self.config.is_lite:
                    Path(uri).parent.mkdir(parents=True, exist_ok=True)
                token = self.config.milvus_token
                kwargs = {} if token is None else {"token": token.get_secret_value()}
                self._client = MilvusClient(uri=uri, **kwargs)
            return self._client

    def collection(self, dimension: int) -> str:
        return f"{self.config.collection}_{dimension}"

    def _ensure(self, dimension: int) -> str:
        """The collection of this dimension, made on first use."""
        name = self.collection(dimension)
        if name in self._ready:
            return name
        client = self._connect()
        with self._lock:
            if client.has_collection(name):
                client.load_collection(name)  # kept from before: loaded to be searched
            else:
                client.create_collection(
                    name, schema=_schema(dimension), index_params=_index(client)
                )
            self._ready.add(name)
        return name

    def _exists(self, dimension: int) -> str | None:
        name = self.collection(dimension)
        if name in self._ready:
            return name
        client = self._connect()
        if client.has_collection(name):
            with self._lock:
                client.load_collection(name)
                self._ready.add(name)
            return name
        return None

    async def start(self) -> None:
        """Connect (Milvus Lite: open its directory) off the event loop."""
        await self._call(self._connect)

    async def insert(self, rows: list[dict[str, Any]], dimension: int) -> None:
        """Upserted by id: a file ingested again (after a stop) never doubles."""

        def work() -> None:
            name = self._ensure(dimension)
            with self._writing:
                self._connect().upsert(name, rows)

        await self._call(work)

    async def seal(self, dimension: int) -> None:
        """A file's chunks are all in: Milvus Lite flushes them into its indexed
        segments (searching unflushed rows is a scan: 35 times slower at 10,000
        rows here). A server seals segments itself; frequent flushes would only
        make it many small ones."""
        if not self.config.is_lite:
            return

        def work() -> None:
            name = self._ensure(dimension)
            with self._writing:
                self._connect().flush(name)

        await self._call(work)

    async def delete(self, store_id: str, file_id: str | None = None) -> None:
        """Every chunk of a store, or of one file in it, in every collection."""
        expression = f"store_id == {literal(store_id)}"
        if file_id is not None:
            expression += f" and file_id == {literal(file_id)}"

        def work() -> None:
            client = self._connect()
            prefix = self.config.collection + "_"
            for name in client.list_collections():
                if name.startswith(prefix) and name[len(prefix) :].isdigit():
                    with self._writing:
                        client.delete(name, filter=expression)

        await self._call(work)

    async def search(
        self,
        vector: list[float],
        store_ids: Sequence[str],
        file_ids: Sequence[str] | None,
        limit: int,
    ) -> list[Hit]:
        """The ``limit`` nearest chunks in these stores (and files), best first."""

        def work() -> list[Hit]:
            name = self._exists(len(vector))
            if name is None:
                return []
            expression = f"store_id in {quoted(store_ids)}"
            if file_ids is not None:
                expression += f" and file_id in {quoted(file_ids)}"
            found = self._connect().search(
                name,
                data=[vector],
                limit=limit,
                filter=expression,
                output_fields=["store_id", "file_id", "text"],
                search_params={
                    "metric_type": "COSINE",
                    "params": {"ef": max(HNSW_SEARCH_EF, limit)},
                },
            )
            return [
                Hit(
                    e["entity"]["store_id"],
                    e["entity"]["file_id"],
                    e["entity"]["text"],
                    float(e["distance"]),
                )
                for e in found[0]
            ]

        return await self._call(work)

    async def aclose(self) -> None:
        def work() -> None:
            if self._client is not None:
                self._client.close()

        await self._call(work)
        self._threads.shutdown(wait=True)


def _schema(dimension: int) -> Any:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=256)
    schema.add_field("store_id", DataType.VARCHAR, max_length=128, is_partition_key=True)
    schema.add_field("file_id", DataType.VARCHAR, max_length=128)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    return schema


def _index(client: Any) -> Any:
    params = client.prepare_index_params()
    params.add_index(
        field_name="vector",
        index_type="HNSW",
        metric_type="COSINE",
        params={"M": HNSW_M, "efConstruction": HNSW_BUILD_EF},
    )
    params.add_index(field_name="file_id", index_type="INVERTED")
    return params
