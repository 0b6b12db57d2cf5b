"""The vector index on a real Milvus Lite directory: files written at once
(ingestion runs several) are all kept and all found."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from pymilvus import MilvusClient

from gateway.config.knowledge import KnowledgeConfig
from gateway.knowledge.vectors import VectorIndex

DIMENSION = 8
STORES = 3
WRITERS = 4  # the index's threads: as many writes at once as it takes
CHUNKS = 4  # per file


def rows(store_id: str, file_id: str, vectors: list[list[float]]) -> list[dict[str, object]]:
    return [
        {"id": f"{store_id}/{file_id}/{n}", "store_id": store_id, "file_id": file_id,
         "text": f"{file_id} part {n}", "vector": vector}
        for n, vector in enumerate(vectors)
    ]  # fmt: skip


async def ingest(index: VectorIndex, store_id: str, file_id: str) -> None:
    """What an ingestion writes for one file: a previous attempt's rows
    deleted, the chunks upserted, the collection flushed."""
    vectors = [[random.random() + 0.01 for _ in range(DIMENSION)] for _ in range(CHUNKS)]
    await index.delete(store_id, file_id)
    await index.insert(rows(store_id, file_id, vectors), DIMENSION)
    await index.seal(DIMENSION)


def kept(config: KnowledgeConfig) -> set[str]:
    """Every chunk's id in the directory, by an exact query, read by a client
    of its own once the index closed."""
    client = MilvusClient(uri=config.milvus_uri)
    try:
        found = client.query(
            f"{config.collection}_{DIMENSION}", filter="", limit=16_384, output_fields=["id"]
        )
    finally:
        client.close()
    return {row["id"] for row in found}


async def test_files_written_at_once_are_all_kept(tmp_path: Path) -> None:
    config = KnowledgeConfig(
        embedding_model="unused",
        milvus_uri=str(tmp_path / "milvus.db"),
        files_dir=str(tmp_path / "files"),
    )
    index = VectorIndex(config, threads=WRITERS)
    await index.start()
    try:
        files = [(f"vs_{n % STORES}", f"file-{n}") for n in range(120)]
        # Each file's writes in order, the files' writes interleaved.
        writers = [files[start::WRITERS] for start in range(WRITERS)]

        async def write(assigned: list[tuple[str, str]]) -> None:
            for store_id, file_id in assigned:
                await ingest(index, store_id, file_id)

        await asyncio.gather(*(write(assigned) for assigned in writers))
        for store in range(STORES):
            store_id = f"vs_{store}"
            hits = await index.search([1.0] * DIMENSION, [store_id], None, limit=1000)
            # Every file found; not every chunk: HNSW is approximate, and a
            # node its graph leaves unreachable is never a hit (1 in 480 here,
            # in about 1 run in 10). Every chunk is kept: counted exactly below.
            assert {hit.file_id for hit in hits} == {f for s, f in files if s == store_id}
    finally:
        await index.aclose()
    assert kept(config) == {f"{s}/{f}/{n}" for s, f in files for n in range(CHUNKS)}
