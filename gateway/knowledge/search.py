"""Search: a query's nearest chunks in some of a caller's vector stores.

The query is embedded by the store's embedding model (through the router),
the attribute filter is evaluated on the stores' completed files
(``gateway.knowledge.filters``), and one Milvus search over those stores
(and the files that passed) returns the nearest chunks. ``score`` is the
cosine similarity of query and chunk; ``ranking_options.score_threshold``
drops results below it. ``rewrite_query`` is accepted and changes nothing
(the query is searched as given). Several queries are searched each and
merged, best score first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.knowledge.catalog import Catalog
from gateway.knowledge.embedding import Embedder
from gateway.knowledge.filters import matching_files
from gateway.knowledge.objects import not_found, now
from gateway.knowledge.vectors import VectorIndex

Body = dict[str, Any]
# Partial vectors of a file still being ingested may be found: ask for a few
# more than wanted, then keep only the completed files' chunks.
SPARE_RESULTS = 8


@dataclass(slots=True, frozen=True)
class Result:
    file_id: str
    filename: str
    score: float
    text: str
    attributes: Body

    def as_search_result(self) -> Body:
        """An item of ``POST /v1/vector_stores/{id}/search``."""
        return {
            "file_id": self.file_id,
            "filename": self.filename,
            "score": self.score,
            "attributes": self.attributes,
            "content": [{"type": "text", "text": self.text}],
        }


class Searcher:
    def __init__(self, catalog: Catalog, index: VectorIndex, embedder: Embedder) -> None:
        self.catalog = catalog
        self.index = index
        self.embedder = embedder

    async def check_stores(self, owner: str, store_ids: list[str], param: str) -> None:
        """404 naming ``param`` for a store the caller does not have."""
        for position, store_id in enumerate(store_ids):
            row = await self.catalog.call(self.catalog.get_store, owner, store_id)
            if row is None:
                raise not_found("vector store", store_id, f"{param}[{position}]")

    async def search(
        self,
        owner: str,
        store_ids: list[str],
        queries: list[str],
        max_results: int,
        filters: Body | None = None,
        score_threshold: float | None = None,
        param: str = "vector_store_ids",
    ) -> list[Result]:
        await self.check_stores(owner, store_ids, param)
        files = await self.catalog.call(self.catalog.searchable_files, store_ids)
        known = {row["file_id"]: row for row in files}
        allowed = matching_files(filters, ((f, r["attributes"] or {}) for f, r in known.items()))
        queries = [q for q in queries if q.strip()]
        if not known or allowed == [] or not queries:
            return []
        vectors = await self.embedder.embed(queries)
        best: dict[tuple[str, str], Result] = {}
        for vector in vectors:
            hits = await self.index.search(vector, store_ids, allowed, max_results + SPARE_RESULTS)
            for hit in hits:
                row = known.get(hit.file_id)
                if row is None or (score_threshold is not None and hit.score < score_threshold):
                    continue
                key = (hit.file_id, hit.text)
                if key not in best or best[key].score < hit.score:
                    best[key] = Result(
                        hit.file_id, row["filename"], hit.score, hit.text, row["attributes"] or {}
                    )
        await self._touch(owner, store_ids)
        return sorted(best.values(), key=lambda r: r.score, reverse=True)[:max_results]

    async def _touch(self, owner: str, store_ids: list[str]) -> None:
        """A search keeps its stores active (``expires_after`` counts from it)."""
        stamp = {"last_active_at": now()}
        for store_id in store_ids:
            await self.catalog.call(self.catalog.update_store, owner, store_id, stamp)
