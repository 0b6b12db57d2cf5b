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
from collections.abc import Awaitable
from typing import Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

PREFIX = "vllm-gateway:cache:"
RETRY_SECONDS = 1.0  # after a failure, Redis is left alone this long
Value = TypeVar("Value")


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
    per semantic context. A failure is not retried: the request goes on as a
    miss, and for a second every call fails at once without touching the
    network (``down``), so an outage costs requests nothing."""

    def __init__(self, url: str) -> None:
        self._redis = aioredis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        self._down_until = 0.0

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    async def _call(self, call: Awaitable[Value]) -> Value:
        try:
            return await call
        except RedisError:
            self._down_until = time.monotonic() + RETRY_SECONDS
            raise

    def _check(self) -> None:
        if self.down:
            raise RedisError("Redis is unreachable (retried within a second)")

    async def get(self, key: str) -> bytes | None:
        self._check()
        value = await self._call(self._redis.get(PREFIX + key))
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._check()
        await self._call(self._redis.set(PREFIX + key, value, px=max(1, int(ttl * 1000))))

    async def vectors(self, context: str) -> dict[str, bytes]:
        self._check()
        found = await self._call(self._redis.hgetall(PREFIX + "semantic:" + context))
        return {
            (k.decode() if isinstance(k, bytes) else k): v
            for k, v in found.items()
            if isinstance(v, bytes)
        }

    async def add_vector(
        self, context: str, key: str, vector: bytes, ttl: float, limit: int
    ) -> None:
        self._check()
        name = PREFIX + "semantic:" + context
        if await self._call(self._redis.hlen(name)) >= limit:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(name, key, vector)
            pipe.pexpire(name, max(1, int(ttl * 1000)))
            await self._call(pipe.execute())

    async def aclose(self) -> None:
        await self._redis.aclose()
