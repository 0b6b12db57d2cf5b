"""The vector index on a real Milvus Lite directory: files written at once
(ingestion runs several) are all kept and all found."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from gateway.config.knowledge import KnowledgeConfig
from gateway.knowledge.vectors import VectorIndex

DIMENSION = 8
STORES = 3
WRITERS = 4  # the index's threads: as many writes at once as it takes


def rows(store_id: str, file_id: str, vectors: list[list[float]]) -> list[dict[str, object]]:
    return [
        {"id": f"{store_id}/{file_id}/{n}", "store_id": store_id, "file_id": file_id,
         "text": f"{file_id} part {n}", "vector": vector}
        for n, vector in enumerate(vectors)
    ]  # fmt: skip


async def ingest(index: VectorIndex, store_id: str, file_id: str) -> None:
    """What an ingestion writes for one file: a previous attempt's rows
    deleted, the chunks upserted, the collection flushed."""
    vectors = [[random.random() + 0.01 for _ in range(DIMENSION)] for _ in range(4)]
    await index.delete(store_id, file_id)
    await index.insert(rows(store_id, file_id, vectors), DIMENSION)
    await index.seal(DIMENSION)


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
            expected = {file_id for s, file_id in files if s == store_id}
            assert {hit.file_id for hit in hits} == expected
            assert len(hits) == 4 * len(expected)
    finally:
        await index.aclose()
