"""Semantic lookup: the last user message is embedded by the configured
embedding model (through the router, like any request), and the cached
answers of the same context are searched by cosine similarity.

Vectors are normalized once and kept as float32 bytes, so a similarity is one
dot product; all of a context's vectors are compared in one matrix product.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gateway.config.cache import SemanticCacheConfig
from gateway.routing.model import Call
from gateway.routing.router import Router


def as_vector(values: list[float]) -> bytes | None:
    """A unit float32 vector as bytes (None for a zero or malformed one)."""
    try:
        # Normalized in double precision: a tiny vector's norm underflows in float32.
        vector = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    norm = float(np.linalg.norm(vector))
    if vector.ndim != 1 or not norm or not np.isfinite(norm):
        return None
    return bytes((vector / norm).astype(np.float32).tobytes())


def nearest(
    query: bytes, candidates: dict[str, bytes], threshold: float
) -> tuple[str, float] | None:
    """The most similar candidate at or above ``threshold``, with its cosine."""
    vector = np.frombuffer(query, dtype=np.float32)
    keys = [key for key, value in candidates.items() if len(value) == len(query)]
    if not keys:
        return None
    matrix = np.frombuffer(b"".join(candidates[k] for k in keys), dtype=np.float32)
    scores = matrix.reshape(len(keys), vector.size) @ vector
    best = int(np.argmax(scores))
    score = float(scores[best])
    return (keys[best], score) if score >= threshold else None


class Embedder:
    """Embeds questions with the configured model, through the router."""

    def __init__(self, config: SemanticCacheConfig, router: Callable[[], Router]) -> None:
        self.config = config
        self._router = router

    async def embed(self, text: str) -> bytes | None:
        """The question's unit vector; GatewayError when the model fails."""
        router = self._router()
        name = self.config.embedding_model
        result, _ = await router.call(
            router.resolve(name), Call("embeddings", {"model": name, "input": text})
        )
        data = result.get("data") or [{}]
        embedding = data[0].get("embedding") if isinstance(data[0], dict) else None
        return as_vector(embedding) if isinstance(embedding, list) else None
