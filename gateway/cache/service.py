"""The response cache service: what the routes (and any other endpoint) call.

    lookup = await state.cache.lookup(model, operation, body, scope, headers)
    if lookup is None: ...                    # this model does not cache
    elif lookup.payload is not None: ...       # a hit: answer from lookup.payload
    else: ... answer ...; await state.cache.store(lookup, payload)

``lookup.status`` is what the ``X-Gateway-Cache`` header says: ``hit``,
``miss`` or ``bypass`` (not looked up: ``Cache-Control: no-cache``, or a
request that is not deterministic under ``cache: true``). ``store`` does
nothing when the request said ``no-store`` or was not eligible. Payloads are
opaque bytes (the routes keep a JSON answer, or a stream's chunks). Lookups
and stores never fail a request: a cache that cannot answer is a miss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from redis.exceptions import RedisError

from adapters.errors import GatewayError
from gateway.cache.keys import cache_control, context_key, eligible, exact_key, last_user_text
from gateway.cache.store import CacheStore, MemoryStore, RedisStore
from gateway.config.cache import CacheConfig, ModelCache
from gateway.config.schema import GatewayConfig
from gateway.routing.router import Router

Status = Literal["hit", "miss", "bypass"]
SHARED_SCOPE = "*"
ANONYMOUS_SCOPE = "anonymous"


@dataclass(slots=True)
class Lookup:
    status: Status
    key: str = ""
    payload: bytes | None = None
    storable: bool = False
    semantic: bool = False  # a hit found by similarity
    similarity: float | None = None
    # Semantic index entry to add when storing: (context key, question vector).
    vector: tuple[str, bytes] | None = None


class ResponseCache:
    """The cache of the running config; built in the app lifespan."""

    def __init__(self, config: GatewayConfig, router: Callable[[], Router], log: Any) -> None:
        self.config = config.cache or CacheConfig()
        self._log = log
        self._modes = _modes(config)
        self.store: CacheStore | None = None
        self._down = False  # an outage was logged
        self.embedder: Any = None
        if not self._modes and config.cache is None:
            return  # nothing caches: no store, no Redis connection
        if self.config.backend == "redis" and config.redis_url is not None:
            self.store = RedisStore(config.redis_url.get_secret_value())
        else:
            self.store = MemoryStore(self.config.max_entries)
        if self.config.semantic is not None:
            # numpy is imported only when a semantic cache is configured.
            from gateway.cache.semantic import Embedder

            self.embedder = Embedder(self.config.semantic, router)

    def mode(self, model: str) -> ModelCache:
        return self._modes.get(model, False) if self._modes else False

    async def lookup(
        self,
        model: str,
        operation: str,
        body: dict[str, Any],
        scope: str | None,
        headers: Mapping[str, str],
    ) -> Lookup | None:
        """None when ``model`` does not cache; else the lookup's outcome."""
        mode = self.mode(model)
        if not mode or self.store is None:
            return None
        control = cache_control(headers)
        if not eligible(operation, body, mode):
            return Lookup("bypass")
        if self.config.shared:
            scope = SHARED_SCOPE
        scope = scope or ANONYMOUS_SCOPE
        key = exact_key(scope, model, operation, body)
        lookup = Lookup("miss", key, storable=not control.no_store)
        if control.no_cache:
            lookup.status = "bypass"
        try:
            if not control.no_cache:
                lookup.payload = await self.store.get(key)
            if lookup.payload is None and self.embedder is not None and operation == "chat":
                await self._semantic(lookup, scope, model, operation, body, control.no_cache)
        except RedisError as exc:
            self._unavailable(exc)
            lookup.storable = False
        else:
            self._back()
        if lookup.payload is not None:
            lookup.status = "hit"
        return lookup

    def _back(self) -> None:
        if self._down:
            self._down = False
            self._log.info("cache.available")

    async def _semantic(
        self,
        lookup: Lookup,
        scope: str,
        model: str,
        operation: str,
        body: dict[str, Any],
        no_cache: bool,
    ) -> None:
        from gateway.cache.semantic import nearest

        question = last_user_text(body)
        if question is None or (no_cache and not lookup.storable):
            return
        try:
            vector = await self.embedder.embed(question[1])
        except GatewayError as exc:
            self._log.warning("cache.embedding_failed", error=exc.message)
            return
        if vector is None:
            return
        context = context_key(scope, model, operation, body, question[0])
        lookup.vector = (context, vector)
        if no_cache:
            return
        semantic, store = self.config.semantic, self.store
        assert semantic is not None and store is not None
        found = nearest(vector, await store.vectors(context), semantic.threshold)
        if found is not None:
            lookup.payload = await store.get(found[0])
            lookup.semantic = lookup.payload is not None
            lookup.similarity = found[1]

    async def store_answer(self, lookup: Lookup, payload: bytes) -> bool:
        """Keep an answer (a miss or bypass that may be stored); whether it was."""
        if not lookup.storable or lookup.status == "hit" or self.store is None:
            return False
        if len(payload) > self.config.max_entry_bytes:
            return False
        ttl = self.config.ttl_seconds
        try:
            await self.store.set(lookup.key, payload, ttl)
            if lookup.vector is not None and self.config.semantic is not None:
                context, vector = lookup.vector
                limit = self.config.semantic.max_entries_per_context
                await self.store.add_vector(context, lookup.key, vector, ttl, limit)
        except RedisError as exc:
            self._unavailable(exc)
            return False
        return True

    def _unavailable(self, exc: RedisError) -> None:
        """Log an outage once, not once per request."""
        if not self._down:
            self._down = True
            self._log.warning("cache.unavailable", error=str(exc))

    def prepare(self, config: GatewayConfig) -> Callable[[], None]:
        """A reload step: the models' ``cache:`` settings (the section itself,
        backend and TTL, applies on restart)."""
        modes = _modes(config)

        def commit() -> None:
            self._modes = modes if self.store is not None else {}

        return commit

    async def aclose(self) -> None:
        if self.store is not None:
            await self.store.aclose()


def _modes(config: GatewayConfig) -> dict[str, ModelCache]:
    return {name: model.cache for name, model in config.models.items() if model.cache}
