"""The ``cache:`` section of models.yaml: where answers are kept and for how
long; a model opts in with ``cache: true`` (deterministic requests only:
temperature 0 and one choice) or ``cache: always`` (every request).

    cache:
      backend: redis               # memory (default) | redis (uses redis_url)
      ttl_seconds: 3600
      semantic: {embedding_model: minilm, threshold: 0.95}
    models:
      chat: {targets: [...], cache: true}

The loader checks that ``redis`` has a ``redis_url`` and that the embedding
model is one of ``models:``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from adapters.config import Strict

ModelCache = bool | Literal["always"]


class SemanticCacheConfig(Strict):
    """Answers found by the embedding similarity of the last user message."""

    embedding_model: str = Field(description="A public embedding model of models.yaml")
    threshold: float = Field(0.95, gt=0, le=1, description="Cosine similarity for a hit")
    max_entries_per_context: int = Field(
        1000, gt=0, description="Vectors kept per conversation context (the rest not indexed)"
    )


class CacheConfig(Strict):
    backend: Literal["memory", "redis"] = "memory"
    ttl_seconds: float = Field(3600.0, gt=0)
    shared: bool = Field(
        False, description="One cache for every caller; by default each key or token has its own"
    )
    max_entries: int = Field(10_000, gt=0, description="Memory backend: least recently used go")
    max_entry_bytes: int = Field(1_048_576, gt=0, description="Larger answers are not stored")
    semantic: SemanticCacheConfig | None = None
