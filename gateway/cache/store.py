"""Where cached answers live: process memory (an LRU with a TTL per entry) or
Redis (shared by every replica, expired by Redis itself).

Both keep opaque bytes under a key, and, for the semantic cache, a small set
of vectors per context (entry key -> float32 vector bytes). Redis failures
are the caller's to absorb (``RedisError``): a cache that cannot answer is a
miss, never a failed request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as aioredis

PREFIX = "vllm-gateway:cache:"


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def vectors(self, context: str) -> dict[str, bytes]: ...

    async def add_vector(
        self, context: str, key: str, vector: bytes, ttl: float, limit: int
    ) -> None: ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """One process's cache: least recently used entries go past ``max_entries``."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._vectors: OrderedDict[str, tuple[float, dict[str, bytes]]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._entries[key] = (time.monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def vectors(self, context: str) -> dict[str, bytes]:
        found = self._vectors.get(context)
        if found is None:
            return {}
        if found[0] <= time.monotonic():
            del self._vectors[context]
            return {}
        return found[1]

    async def add_vector(
        self, context: str, key: str, vector: bytes, ttl: float, limit: int
    ) -> None:
        vectors = await self.vectors(context)
        if len(vectors) >= limit:
            return
        vectors = {**vectors, key: vector}
        # A context lives as long as its newest entry (as Redis's EXPIRE does).
        self._vectors[context] = (time.monotonic() + ttl, vectors)
        self._vectors.move_to_end(context)
        while len(self._vectors) > self._max:
            self._vectors.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()
        self._vectors.clear()


class RedisStore:
    """The cache in Redis: ``SET`` with an expiry per entry, a hash of vectors
    per semantic context."""

    def __init__(self, url: str) -> None:
        self._redis = aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(PREFIX + key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._redis.set(PREFIX + key, value, px=max(1, int(ttl * 1000)))

    async def vectors(self, context: str) -> dict[str, bytes]:
        found = await self._redis.hgetall(PREFIX + "semantic:" + context)
        return {
            (k.decode() if isinstance(k, bytes) else k): v
            for k, v in found.items()
            if isinstance(v, bytes)
        }

    async def add_vector(
        self, context: str, key: str, vector: bytes, ttl: float, limit: int
    ) -> None:
        name = PREFIX + "semantic:" + context
        if await self._redis.hlen(name) >= limit:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(name, key, vector)
            pipe.pexpire(name, max(1, int(ttl * 1000)))
            await pipe.execute()

    async def aclose(self) -> None:
        await self._redis.aclose()
