"""Chunks and queries as vectors, from the configured embedding model.

The model is a public model of models.yaml, called through the router like
any ``/v1/embeddings`` request: its targets, balancing, retries, fallbacks
and breakers apply, whether a local vLLM engine or a remote API serves it.
Ingestion also waits out a model that cannot answer yet (engines still
loading, every target down: 503, 429, 5xx) with backoff, up to
``patience`` seconds, before it gives a file up; a 4xx is final at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from adapters.errors import GatewayError, UpstreamError
from gateway.config.schema import GatewayConfig
from gateway.routing.model import Call
from gateway.routing.router import Router

BACKOFF_START = 0.5
BACKOFF_MAX = 10.0


def embedding_window(config: GatewayConfig, model: str) -> int | None:
    """The tokens the embedding model accepts, when models.yaml says: the
    model's ``max_model_len``, else the smallest of its engines'."""
    public = config.models.get(model)
    if public is None:
        return None
    if public.max_model_len is not None:
        return public.max_model_len
    windows = [
        engine.max_model_len
        for target in public.targets
        if target.engine is not None
        and (engine := config.engines.get(target.engine)) is not None
        and engine.max_model_len is not None
    ]
    return min(windows) if windows else None


class Embedder:
    def __init__(
        self, model: str, router: Callable[[], Router], batch: int, patience: float = 300.0
    ) -> None:
        self.model = model
        self._router = router
        self.batch = batch
        self.patience = patience

    async def embed(self, texts: list[str], *, wait: bool = False) -> list[list[float]]:
        """One vector per text, in order (``batch`` texts a request); ``wait``:
        retry an unavailable model for up to ``patience`` seconds."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            part = texts[start : start + self.batch]
            result = await (self._patiently(part) if wait else self._call(part))
            vectors.extend(self._vectors(result, len(part)))
        return vectors

    async def _call(self, texts: list[str]) -> dict[str, Any]:
        router = self._router()
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        result, _ = await router.call(router.resolve(self.model), Call("embeddings", body))
        return result

    async def _patiently(self, texts: list[str]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        delay = BACKOFF_START
        while True:
            try:
                return await self._call(texts)
            except GatewayError as exc:
                transient = isinstance(exc, UpstreamError) and (
                    exc.status >= 500 or exc.status == 429
                )
                if not transient or loop.time() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _vectors(self, result: dict[str, Any], count: int) -> list[list[float]]:
        data = result.get("data")
        if not isinstance(data, list) or len(data) != count:
            raise UpstreamError(
                f"The embedding model '{self.model}' returned "
                f"{len(data) if isinstance(data, list) else 'no'} vectors for {count} inputs."
            )
        ordered = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
        vectors = [d.get("embedding") if isinstance(d, dict) else None for d in ordered]
        if not all(isinstance(v, list) and v for v in vectors):
            raise UpstreamError(f"The embedding model '{self.model}' returned a malformed vector.")
        return vectors  # type: ignore[return-value]
