"""The knowledge base of one running gateway, built in the app lifespan from
the ``knowledge:`` section and closed with it.

``start`` resumes the ingestion of files a stop interrupted and opens
Milvus in the background (importing pymilvus and opening Milvus Lite take a
while: /health answers meanwhile, and a request that needs Milvus waits for
it). The interrupted files are read before the app serves: a file a request
adds is ``in_progress`` too, and read later it would be ingested twice at
once. ``aclose`` stops ingestion (those files resume at the next start) and
closes the catalog and the Milvus client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.knowledge import KnowledgeConfig
from gateway.config.schema import GatewayConfig
from gateway.knowledge.catalog import Catalog
from gateway.knowledge.embedding import Embedder, embedding_window
from gateway.knowledge.files import Files
from gateway.knowledge.ingest import Ingestion
from gateway.knowledge.search import Searcher
from gateway.knowledge.stores import VectorStores
from gateway.knowledge.vectors import VectorIndex
from gateway.routing.router import Router
from gateway.tokens import TokenCounter

CATALOG_FILE = "catalog.sqlite3"


@dataclass(slots=True, eq=False)
class KnowledgeBase:
    config: KnowledgeConfig
    files: Files
    stores: VectorStores
    search: Searcher
    ingestion: Ingestion
    catalog: Catalog
    index: VectorIndex
    log: Any
    _opening: asyncio.Task[None] | None = None

    async def start(self) -> None:
        resumed = await self.ingestion.resume()
        if resumed:
            self.log.info("knowledge: resuming interrupted ingestion", files=resumed)
        self._opening = asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        try:
            await self.index.start()
        except Exception:  # each request that needs Milvus retries, and says why it cannot
            self.log.exception("knowledge: Milvus could not be opened", uri=self.config.milvus_uri)

    async def aclose(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
            await asyncio.wait([self._opening])
        await self.ingestion.aclose()
        await self.index.aclose()
        self.catalog.close()


def build_knowledge(
    config: GatewayConfig, router: Callable[[], Router], tokens: TokenCounter, log: Any
) -> KnowledgeBase | None:
    """None when models.yaml has no ``knowledge:`` section."""
    knowledge = config.knowledge
    if knowledge is None:
        return None
    root = Path(knowledge.files_dir)
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(root / CATALOG_FILE)
    index = VectorIndex(knowledge)
    embedder = Embedder(knowledge.embedding_model, router, knowledge.embedding_batch)
    ingestion = Ingestion(
        catalog, index, embedder, blobs, tokens.load, knowledge.ingest_concurrency, log
    )
    window = embedding_window(config, knowledge.embedding_model)
    stores = VectorStores(catalog, index, ingestion, window, knowledge.max_stores_per_caller)
    files = Files(knowledge, catalog, blobs)
    files.remove_from_store = stores.remove
    return KnowledgeBase(
        knowledge, files, stores, Searcher(catalog, index, embedder), ingestion, catalog, index, log
    )
