"""Responses and conversations in Redis, shared by every replica.

The layout of ``gateway.responses.store`` in Redis keys, under one hash tag
per owner (``vllm-gateway:{state:<owner digest>}:``, so the scripts also run
on Redis Cluster and another owner's keys are another name): ``resp:<id>``
(the stored response), ``thread:<id>`` (a list of items), ``conv:<id>`` (the
conversation object), ``conv:<id>:ids`` (its item ids in order) and
``conv:<id>:items`` (a hash of items by id). Every write is one atomic script
or transaction and sets the keys' expiry (``ttl``). Rebuilding a chain is two
reads, whatever its length: the response, then its slice of the thread.

``ResilientStore`` applies ``auth.redis_failure`` when Redis cannot be reached:
``fail_open`` serves from per-replica memory until Redis is back (objects
written meanwhile stay readable on that replica), ``fail_closed`` answers 503.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.errors import UpstreamUnavailableError
from gateway.responses.store import (
    MemoryStore,
    Store,
    StoredResponse,
    conversation_full,
    decode_items,
)

Body = dict[str, Any]
Result = TypeVar("Result")
RETRY_SECONDS = 1.0
# What says Redis cannot serve now (down, unreachable, slow, a read-only replica);
# any other Redis error is a bug to surface, not an outage to route around.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)

# KEYS: thread, response. ARGV: expected thread length, ttl ms, record, items...
# Appends when the thread is as long as expected; 0 (nothing written) otherwise.
_APPEND = """
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
for i = 4, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV >= 4 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
return 1
"""

# KEYS: response. The stored response and its thread's first ``end`` items, in
# one round trip (the thread's key, named in the record, shares its hash tag).
_CHAIN = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local record = cjson.decode(string.sub(raw, 1, string.find(raw, '\\n', 1, true) - 1))
local items = redis.call('LRANGE', record['thread'], 0, record['end'] - 1)
table.insert(items, 1, raw)
return items
"""

# KEYS: response, thread. ARGV: start, end. Drops the response, and its own
# items when nothing came after them.
_DELETE_RESPONSE = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
if redis.call('LLEN', KEYS[2]) == tonumber(ARGV[2]) then
  if tonumber(ARGV[1]) == 0 then redis.call('DEL', KEYS[2])
  else redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1) end
end
return 1
"""

# KEYS: conversation, ids, items. ARGV: ttl ms, max items (0: no check), then
# id, item pairs. -1: no such conversation, -2: over the limit, else the count.
_ADD_ITEMS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local count = redis.call('LLEN', KEYS[2]) + (#ARGV - 2) / 2
if tonumber(ARGV[2]) > 0 and count > tonumber(ARGV[2]) then return -2 end
for i = 3, #ARGV, 2 do
  redis.call('RPUSH', KEYS[2], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return count
"""

# KEYS: conversation, ids, items. Every item in order; nil when no conversation.
_ITEMS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
local out = {}
for i = 1, #ids, 1000 do
  local got = redis.call('HMGET', KEYS[3], unpack(ids, i, math.min(i + 999, #ids)))
  for _, item in ipairs(got) do if item then out[#out + 1] = item end end
end
return out
"""

# KEYS: ids, items. ARGV: id.
_DELETE_ITEM = """
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('LREM', KEYS[1], 1, ARGV[1])
return 1
"""


class RedisStore:
    def __init__(self, url: str, ttl: float, max_items: int) -> None:
        self._client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=0.5,
            socket_timeout=1.0,
            retry=Retry(NoBackoff(), 0),  # a failure falls back at once, never waits
        )
        self._ttl_ms = int(ttl * 1000)
        self.max_items = max_items
        self._append = self._client.register_script(_APPEND)
        self._chain = self._client.register_script(_CHAIN)
        self._delete_response = self._client.register_script(_DELETE_RESPONSE)
        self._add_items = self._client.register_script(_ADD_ITEMS)
        self._items = self._client.register_script(_ITEMS)
        self._delete_item = self._client.register_script(_DELETE_ITEM)
        self._prefixes: dict[str, str] = {}

    def _prefix(self, owner: str) -> str:
        prefix = self._prefixes.get(owner)
        if prefix is None:
            if len(self._prefixes) > 10_000:
                self._prefixes.clear()  # bounded; recomputing one is a sha256
            tag = hashlib.sha256(owner.encode()).hexdigest()[:24]
            prefix = self._prefixes[owner] = f"vllm-gateway:{{state:{tag}}}:"
        return prefix

    def _conversation_keys(self, owner: str, conversation_id: str) -> list[str]:
        base = f"{self._prefix(owner)}conv:{conversation_id}"
        return [base, base + ":ids", base + ":items"]

    def check_writable(self) -> None:
        return None

    # ---- responses -----------------------------------------------------------

    async def get_response(self, owner: str, response_id: str) -> StoredResponse | None:
        raw = await self._client.get(f"{self._prefix(owner)}resp:{response_id}")
        return None if raw is None else StoredResponse.load(cast(bytes, raw), self)

    async def thread(self, record: StoredResponse, stop: int) -> list[Body]:
        if stop <= 0:
            return []
        return decode_items(await self._client.lrange(record.thread, 0, stop - 1))

    async def chain(self, owner: str, response_id: str) -> tuple[StoredResponse, list[Body]] | None:
        raw = await self._chain(keys=[f"{self._prefix(owner)}resp:{response_id}"])
        if raw is None:
            return None
        return StoredResponse.load(raw[0], self), decode_items(raw[1:])

    async def put_response(
        self,
        owner: str,
        record: StoredResponse,
        history: list[Body],
        items: list[Body],
        parent: StoredResponse | None,
    ) -> None:
        key = f"{self._prefix(owner)}resp:{record.id}"
        encoded = [orjson.dumps(item) for item in items]
        if parent is not None and parent.home is self:
            record.thread = parent.thread
            args: list[Any] = [parent.end, self._ttl_ms, record.dump(), *encoded]
            if await self._append(keys=[record.thread, key], args=args):
                record.home = self
                return
        # A new thread: nothing continues this history here yet.
        record.thread = f"{self._prefix(owner)}thread:{record.id}"
        prefix = [orjson.dumps(item) for item in history]
        args = [0, self._ttl_ms, record.dump(), *prefix, *encoded]
        await self._append(keys=[record.thread, key], args=args)
        record.home = self

    async def delete_response(self, owner: str, response_id: str) -> bool:
        record = await self.get_response(owner, response_id)
        if record is None:
            return False
        key = f"{self._prefix(owner)}resp:{response_id}"
        args = [record.start, record.end]
        return bool(await self._delete_response(keys=[key, record.thread], args=args))

    # ---- conversations -------------------------------------------------------

    async def create_conversation(self, owner: str, conversation: Body, items: list[Body]) -> None:
        meta, ids, stored = self._conversation_keys(owner, conversation["id"])
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(meta, orjson.dumps(conversation), px=self._ttl_ms)
            if items:
                pipe.rpush(ids, *(item["id"] for item in items))
                pipe.hset(stored, mapping={item["id"]: orjson.dumps(item) for item in items})
                pipe.pexpire(ids, self._ttl_ms)
                pipe.pexpire(stored, self._ttl_ms)
            await pipe.execute()

    async def get_conversation(self, owner: str, conversation_id: str) -> Body | None:
        raw = await self._client.get(self._conversation_keys(owner, conversation_id)[0])
        return None if raw is None else dict(orjson.loads(raw))

    async def update_conversation(self, owner: str, conversation: Body) -> bool:
        keys = self._conversation_keys(owner, conversation["id"])
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(keys[0], orjson.dumps(conversation), px=self._ttl_ms, xx=True)
            pipe.pexpire(keys[1], self._ttl_ms)
            pipe.pexpire(keys[2], self._ttl_ms)
            done = await pipe.execute()
        return bool(done[0])

    async def delete_conversation(self, owner: str, conversation_id: str) -> bool:
        keys = self._conversation_keys(owner, conversation_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(keys[0])
            pipe.delete(keys[1], keys[2])
            done = await pipe.execute()
        return bool(done[0])

    async def conversation_items(self, owner: str, conversation_id: str) -> list[Body] | None:
        raw = await self._items(keys=self._conversation_keys(owner, conversation_id))
        return None if raw is None else decode_items(raw)

    async def add_items(
        self, owner: str, conversation_id: str, items: list[Body], *, enforce: bool
    ) -> bool:
        args: list[Any] = [self._ttl_ms, self.max_items if enforce else 0]
        for item in items:
            args.extend((item["id"], orjson.dumps(item)))
        done = await self._add_items(
            keys=self._conversation_keys(owner, conversation_id), args=args
        )
        if done == -2:
            raise conversation_full(self.max_items, "items")
        return bool(done != -1)

    async def get_item(self, owner: str, conversation_id: str, item_id: str) -> Body | None:
        raw = await self._client.hget(self._conversation_keys(owner, conversation_id)[2], item_id)
        return None if raw is None else dict(orjson.loads(raw))

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> bool:
        keys = self._conversation_keys(owner, conversation_id)[1:]
        return bool(await self._delete_item(keys=keys, args=[item_id]))

    async def aclose(self) -> None:
        await self._client.aclose()


class ResilientStore:
    """The Redis store, with ``redis_failure``'s policy when Redis cannot be reached."""

    def __init__(self, redis: RedisStore, fallback: MemoryStore, *, fail_open: bool, log: Any):
        self._redis = redis
        self._fallback = fallback
        self._fail_open = fail_open
        self._log = log
        self._down_until = 0.0
        self._fell_back = False  # the fallback holds something written while Redis was down

    @property
    def status(self) -> str:
        return "redis-unreachable" if time.monotonic() < self._down_until else "redis"

    def check_writable(self) -> None:
        if not self._fail_open and time.monotonic() < self._down_until:
            raise self._unavailable()

    def _unavailable(self) -> UpstreamUnavailableError:
        return UpstreamUnavailableError(
            "Conversation state is unavailable right now: Redis cannot be reached "
            "(the gateway is configured to fail closed).",
            retry_after=RETRY_SECONDS,
        )

    async def _run(
        self,
        call: Callable[[Store], Awaitable[Result]],
        *,
        read: bool = False,
    ) -> Result:
        if time.monotonic() >= self._down_until:
            try:
                result = await call(self._redis)
            except UNREACHABLE as exc:
                self._failed(exc)
            else:
                if self._down_until:
                    self._down_until = 0.0
                    self._log.info("redis reachable again: conversation state is shared again")
                if not (read and result is None and self._fell_back):
                    return result
                return await call(self._fallback)
        if not self._fail_open:
            raise self._unavailable()
        self._fell_back = True
        return await call(self._fallback)

    def _failed(self, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            self._log.warning(
                "redis unreachable: conversation state is per replica until it is back"
                if self._fail_open
                else "redis unreachable: refusing stateful requests until it is back (fail_closed)",
                error=type(exc).__name__,
            )
        self._down_until = time.monotonic() + RETRY_SECONDS

    async def get_response(self, owner: str, response_id: str) -> StoredResponse | None:
        return await self._run(lambda s: s.get_response(owner, response_id), read=True)

    async def thread(self, record: StoredResponse, stop: int) -> list[Body]:
        if record.home is self._fallback:
            return await self._fallback.thread(record, stop)
        # A thread kept in Redis is nowhere else: never rebuild a shorter history.
        try:
            return await self._redis.thread(record, stop)
        except UNREACHABLE as exc:
            self._failed(exc)
            raise UpstreamUnavailableError(
                "Conversation state is unavailable right now: Redis cannot be reached.",
                retry_after=RETRY_SECONDS,
            ) from exc

    async def chain(self, owner: str, response_id: str) -> tuple[StoredResponse, list[Body]] | None:
        return await self._run(lambda s: s.chain(owner, response_id), read=True)

    async def put_response(
        self,
        owner: str,
        record: StoredResponse,
        history: list[Body],
        items: list[Body],
        parent: StoredResponse | None,
    ) -> None:
        await self._run(lambda s: s.put_response(owner, record, history, items, parent))

    async def delete_response(self, owner: str, response_id: str) -> bool:
        deleted = await self._run(lambda s: s.delete_response(owner, response_id))
        if self._fell_back:
            deleted = await self._fallback.delete_response(owner, response_id) or deleted
        return deleted

    async def create_conversation(self, owner: str, conversation: Body, items: list[Body]) -> None:
        await self._run(lambda s: s.create_conversation(owner, conversation, items))

    async def get_conversation(self, owner: str, conversation_id: str) -> Body | None:
        return await self._run(lambda s: s.get_conversation(owner, conversation_id), read=True)

    async def update_conversation(self, owner: str, conversation: Body) -> bool:
        return await self._run(lambda s: s.update_conversation(owner, conversation))

    async def delete_conversation(self, owner: str, conversation_id: str) -> bool:
        return await self._run(lambda s: s.delete_conversation(owner, conversation_id))

    async def conversation_items(self, owner: str, conversation_id: str) -> list[Body] | None:
        return await self._run(lambda s: s.conversation_items(owner, conversation_id), read=True)

    async def add_items(
        self, owner: str, conversation_id: str, items: list[Body], *, enforce: bool
    ) -> bool:
        return await self._run(
            lambda s: s.add_items(owner, conversation_id, items, enforce=enforce)
        )

    async def get_item(self, owner: str, conversation_id: str, item_id: str) -> Body | None:
        return await self._run(lambda s: s.get_item(owner, conversation_id, item_id), read=True)

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> bool:
        return await self._run(lambda s: s.delete_item(owner, conversation_id, item_id))

    async def aclose(self) -> None:
        await self._redis.aclose()
        await self._fallback.aclose()
