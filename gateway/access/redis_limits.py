"""The limiter's windows in Redis, so every replica enforces one limit.

Each admission and each settlement is one Lua script call, atomic in Redis
and timed by Redis's own clock (replicas' clocks may differ). A scope is a
hash of one-second slots (``r<second>``/``t<second>``, totals ``R``/``T``,
oldest slot ``lo``) and a sorted set of in-flight leases scored by their
expiry. Leases are refreshed while their request runs, so the slots of a
replica that died free themselves within ``LEASE_MS``. All keys share one
hash tag, so the scripts also run on Redis Cluster.

When Redis cannot be reached the limiter either falls back to per-replica
memory limits (``fail_open``) or refuses requests with 503 (``fail_closed``),
and tries Redis again a second later.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.errors import UpstreamUnavailableError
from gateway.access.limits import (
    WINDOW_SECONDS,
    MemoryLimiter,
    Refusal,
    Scope,
    Ticket,
    Usage,
    refusal_error,
)

PREFIX = "vllm-gateway:{limits}:"
LEASE_MS = 60_000
RETRY_SECONDS = 1.0

_PRELUDE = """
local t = redis.call('TIME')
local now_s = tonumber(t[1])
local now_ms = now_s * 1000 + math.floor(tonumber(t[2]) / 1000)
local span = WINDOW_SECONDS

local function prune(win)
  local lo = tonumber(redis.call('HGET', win, 'lo'))
  if not lo then return 0, 0 end
  local cutoff = now_s - span + 1
  if lo >= cutoff then
    local got = redis.call('HMGET', win, 'R', 'T')
    return tonumber(got[1]) or 0, tonumber(got[2]) or 0
  end
  if cutoff - lo > span then
    redis.call('DEL', win)
    return 0, 0
  end
  local r, tk = 0, 0
  for s = lo, cutoff - 1 do
    local got = redis.call('HMGET', win, 'r' .. s, 't' .. s)
    r = r + (tonumber(got[1]) or 0)
    tk = tk + (tonumber(got[2]) or 0)
    redis.call('HDEL', win, 'r' .. s, 't' .. s)
  end
  local left_r = redis.call('HINCRBY', win, 'R', -r)
  local left_t = redis.call('HINCRBY', win, 'T', -tk)
  local s = cutoff
  while s <= now_s and redis.call('HEXISTS', win, 'r' .. s) == 0
      and redis.call('HEXISTS', win, 't' .. s) == 0 do
    s = s + 1
  end
  if s > now_s then
    redis.call('DEL', win)
    return 0, 0
  end
  redis.call('HSET', win, 'lo', s)
  return left_r, left_t
end

local function reset_ms(win)
  local lo = tonumber(redis.call('HGET', win, 'lo'))
  if not lo then return 0 end
  return (lo + span) * 1000 - now_ms
end

local function add(win, requests, tokens)
  redis.call('HSETNX', win, 'lo', now_s)
  if requests > 0 then
    redis.call('HINCRBY', win, 'r' .. now_s, requests)
    redis.call('HINCRBY', win, 'R', requests)
  end
  if tokens > 0 then
    redis.call('HINCRBY', win, 't' .. now_s, tokens)
    redis.call('HINCRBY', win, 'T', tokens)
  end
  redis.call('PEXPIRE', win, (span + 1) * 1000)
end

local function in_flight(conc)
  redis.call('ZREMRANGEBYSCORE', conc, '-inf', now_ms)
  return redis.call('ZCARD', conc)
end
""".replace("WINDOW_SECONDS", str(WINDOW_SECONDS))

# KEYS: window, leases per scope. ARGV: lease, lease_ms, cost, then rpm, tpm,
# max_concurrent per scope (0 = none). Refused: {0, scope, why, wait_ms, R, T,
# in flight}; admitted: {1, then R, T, in flight, reset_ms of each scope}.
_ADMIT = (
    _PRELUDE
    + """
local function wait_ms(win, field, need)
  local lo = tonumber(redis.call('HGET', win, 'lo')) or now_s
  local freed = 0
  for s = lo, now_s do
    freed = freed + (tonumber(redis.call('HGET', win, field .. s)) or 0)
    if freed >= need then return (s + span) * 1000 - now_ms end
  end
  return span * 1000
end

local lease, lease_ms, cost = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local seen = {}
for i = 1, #KEYS / 2 do
  local win, conc = KEYS[2 * i - 1], KEYS[2 * i]
  local rpm, tpm, maxc = tonumber(ARGV[1 + 3 * i]), tonumber(ARGV[2 + 3 * i]),
      tonumber(ARGV[3 + 3 * i])
  local r, tk = prune(win)
  local busy = in_flight(conc)
  if maxc > 0 and busy >= maxc then return {0, i, 'concurrent', 1000, r, tk, busy} end
  if rpm > 0 and r + 1 > rpm then
    return {0, i, 'requests', wait_ms(win, 'r', r + 1 - rpm), r, tk, busy}
  end
  if tpm > 0 and cost > tpm then return {0, i, 'too_large', 0, r, tk, busy} end
  if tpm > 0 and tk + cost > tpm then
    return {0, i, 'tokens', wait_ms(win, 't', tk + cost - tpm), r, tk, busy}
  end
  seen[i] = {r, tk, busy}
end
for i = 1, #KEYS / 2 do
  local win, conc = KEYS[2 * i - 1], KEYS[2 * i]
  add(win, 1, cost)
  redis.call('ZADD', conc, now_ms + lease_ms, lease)
  redis.call('PEXPIRE', conc, lease_ms)
end
local admitted = {1}
for i = 1, #KEYS / 2 do
  table.insert(admitted, seen[i][1] + 1)
  table.insert(admitted, seen[i][2] + cost)
  table.insert(admitted, seen[i][3] + 1)
  table.insert(admitted, reset_ms(KEYS[2 * i - 1]))
end
return admitted
"""
)

# KEYS: window, leases per scope. ARGV: lease, tokens to charge.
_SETTLE = (
    _PRELUDE
    + """
local lease, tokens = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  local win, conc = KEYS[2 * i - 1], KEYS[2 * i]
  if tokens > 0 then
    prune(win)
    add(win, 0, tokens)
  end
  redis.call('ZREM', conc, lease)
end
return 1
"""
)

# KEYS: the leases sets; ARGV: lease_ms, then the lease of each set.
_REFRESH = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', expiry, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[1]))
end
return 1
"""

# KEYS: window, leases. Returns R, T, in flight, reset_ms.
_USAGE = (
    _PRELUDE
    + """
local r, tk = prune(KEYS[1])
return {r, tk, in_flight(KEYS[2]), reset_ms(KEYS[1])}
"""
)


def _keys(scopes: Sequence[Scope]) -> list[str]:
    keys: list[str] = []
    for scope in scopes:
        keys.extend((f"{PREFIX}w:{scope.name}", f"{PREFIX}c:{scope.name}"))
    return keys


class RedisLimiter:
    """Shared limits through Redis, with per-replica memory limits as the fallback."""

    def __init__(self, url: str, *, fail_open: bool, log: Any) -> None:
        self._client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=0.5,
            socket_timeout=1.0,
            retry=Retry(NoBackoff(), 0),  # a failure falls back at once, never waits
        )
        self._admit = self._client.register_script(_ADMIT)
        self._settle = self._client.register_script(_SETTLE)
        self._refresh = self._client.register_script(_REFRESH)
        self._usage = self._client.register_script(_USAGE)
        self._fallback = MemoryLimiter()
        self._fail_open = fail_open
        self._log = log
        self._down_until = 0.0
        self._leases: dict[str, tuple[str, ...]] = {}  # lease -> its leases sets
        self._replica = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._counter = itertools.count()
        self._background: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None

    @property
    def status(self) -> str:
        if time.monotonic() < self._down_until:
            return "redis-unreachable"
        return "redis"

    def start(self) -> None:
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_leases())

    def _failed(self, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            self._log.warning(
                "redis unreachable: rate limits are per replica until it is back"
                if self._fail_open
                else "redis unreachable: refusing requests until it is back (fail_closed)",
                error=type(exc).__name__,
            )
        self._down_until = time.monotonic() + RETRY_SECONDS

    def _recovered(self) -> None:
        if self._down_until:
            self._down_until = 0.0
            self._log.info("redis reachable again: rate limits are shared again")

    def _degraded(self, scopes: Sequence[Scope], cost: int) -> Ticket:
        if not self._fail_open:
            raise UpstreamUnavailableError(
                "Rate limiting is unavailable right now, so requests are refused "
                "(the gateway is configured to fail closed).",
                retry_after=RETRY_SECONDS,
            )
        return self._fallback.take(scopes, cost)

    async def acquire(self, scopes: Sequence[Scope], cost: int) -> Ticket:
        if time.monotonic() < self._down_until:
            return self._degraded(scopes, cost)
        lease = f"{self._replica}-{next(self._counter)}"
        args: list[Any] = [lease, LEASE_MS, cost]
        for scope in scopes:
            quota = scope.quota
            args.extend((quota.rpm or 0, quota.tpm or 0, quota.max_concurrent or 0))
        keys = _keys(scopes)
        try:
            reply = await self._admit(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return self._degraded(scopes, cost)
        self._recovered()
        if reply[0] == 0:
            scope = scopes[int(reply[1]) - 1]
            refusal = cast(Refusal, reply[2].decode())
            usage = Usage(int(reply[4]), int(reply[5]), int(reply[6]))
            raise refusal_error(scope, refusal, usage, cost, int(reply[3]) / 1000)
        self._leases[lease] = tuple(keys[1::2])
        usages = tuple(
            Usage(int(reply[i]), int(reply[i + 1]), int(reply[i + 2]), int(reply[i + 3]) / 1000)
            for i in range(1, len(reply), 4)
        )
        return Ticket(tuple(scopes), lease, cost, usages, self)

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        if ticket.issuer is not self:
            await ticket.issuer.settle(ticket, tokens)
            return
        self._leases.pop(ticket.lease, None)
        # In the background: the response need not wait for Redis, and a
        # cancelled request still gets its slots back.
        task = asyncio.get_running_loop().create_task(self._send_settle(ticket, tokens))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_settle(self, ticket: Ticket, tokens: int) -> None:
        try:
            await self._settle(keys=_keys(ticket.scopes), args=[ticket.lease, tokens])
        except (RedisError, OSError) as exc:
            self._failed(exc)  # its lease expires by itself

    async def usage(self, scope: str) -> Usage:
        if time.monotonic() < self._down_until:
            return self._fallback.peek(scope)
        try:
            reply = await self._usage(keys=[f"{PREFIX}w:{scope}", f"{PREFIX}c:{scope}"])
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return self._fallback.peek(scope)
        return Usage(int(reply[0]), int(reply[1]), int(reply[2]), max(0, int(reply[3])) / 1000)

    async def _refresh_leases(self) -> None:
        while True:
            await asyncio.sleep(LEASE_MS / 3000)
            keys: list[str] = []
            args: list[Any] = [LEASE_MS]
            for lease, sets in list(self._leases.items()):
                keys.extend(sets)
                args.extend([lease] * len(sets))
            if not keys:
                continue
            try:
                await self._refresh(keys=keys, args=args)
            except (RedisError, OSError) as exc:
                self._failed(exc)

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._client.aclose()
