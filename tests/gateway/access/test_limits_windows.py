"""The sliding windows themselves: slots leaving after 60 s, waits, leases of a
dead replica expiring, in memory and in a real Redis (seeded with old slots,
since Redis's clock cannot be moved)."""

from __future__ import annotations

import io
import secrets

import pytest
import redis.asyncio as aioredis

from adapters.errors import RateLimitError
from gateway.access.limits import Scope, Usage, _Window, openai_duration, ratelimit_headers
from gateway.access.redis_limits import PREFIX, RedisLimiter
from gateway.config.access import Quota
from gateway.observability.logs import make_logger
from tests.helpers import RedisServer


def test_window_slides_slot_by_slot() -> None:
    window = _Window()
    window.add(100, 2, 10)
    window.add(100, 0, 4)  # completion tokens charged in the same second
    window.add(130, 1, 5)
    assert (window.requests, window.tokens) == (3, 19)
    window.prune(159)  # second 100 is still inside [100, 159]
    assert (window.requests, window.tokens) == (3, 19)
    assert window.wait(1, 1, 150.5) == pytest.approx(9.5)
    assert window.wait(1, 3, 150.5) == pytest.approx(39.5)
    assert window.refusal(Quota(rpm=3), 0, 150.5) == ("requests", pytest.approx(9.5))
    assert window.refusal(Quota(tpm=20), 2, 150.5) == ("tokens", pytest.approx(9.5))
    assert window.refusal(Quota(tpm=21), 2, 150.5) is None
    assert window.refusal(Quota(tpm=10), 11, 150.5) == ("too_large", 0.0)
    window.prune(160)
    assert (window.requests, window.tokens) == (1, 5)
    assert window.usage(160.0).reset == pytest.approx(30.0)
    window.prune(190)
    assert (window.requests, window.tokens, len(window.slots)) == (0, 0, 0)


def test_headers_and_durations_read_like_openai() -> None:
    durations = (-0.5, 0, 0.12, 1, 7.05, 19.25, 19.5, 19.999, 59.5, 60, 125)
    assert [openai_duration(s) for s in durations] == [
        "0ms",
        "0ms",
        "120ms",
        "1s",
        "7.05s",
        "19.25s",
        "19.5s",
        "20s",
        "59.5s",
        "1m0s",
        "2m5s",
    ]
    headers = ratelimit_headers(
        Scope("key:a", "key 'a'", Quota(rpm=10, tpm=100)), Usage(4, 120, 1, 0.5)
    )
    assert headers == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "6",
        "x-ratelimit-reset-requests": "500ms",
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "500ms",
    }
    assert ratelimit_headers(Scope("key:b", "key 'b'", Quota(max_concurrent=2)), Usage()) == {}
    only_rpm = ratelimit_headers(Scope("key:c", "key 'c'", Quota(rpm=5)), Usage(1, 0, 0, 2))
    assert only_rpm == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "2s",
    }
    only_tpm = ratelimit_headers(Scope("key:d", "key 'd'", Quota(tpm=50)), Usage(1, 60, 0, 0.25))
    assert only_tpm == {
        "x-ratelimit-limit-tokens": "50",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "250ms",
    }


async def test_redis_window_drops_old_slots_and_dead_leases(redis_server: RedisServer) -> None:
    log = io.BytesIO()
    limiter = RedisLimiter(redis_server.url, fail_open=False, log=make_logger(log))
    client = aioredis.Redis.from_url(redis_server.url)
    name = f"key:seeded-{secrets.token_hex(4)}"
    window, leases = f"{PREFIX}w:{name}", f"{PREFIX}c:{name}"
    try:
        now = (await client.time())[0]
        old, recent = now - 65, now - 10
        await client.hset(
            window,
            mapping={
                "lo": old,
                f"r{old}": 5,
                f"t{old}": 50,
                f"r{recent}": 2,
                f"t{recent}": 20,
                "R": 7,
                "T": 70,
            },
        )
        # A lease of a replica that died 10 s ago: already expired.
        await client.zadd(leases, {"dead-replica-1": (now - 10) * 1000})
        usage = await limiter.usage(name)
        assert (usage.requests, usage.tokens, usage.in_flight) == (2, 20, 0)
        assert 48 <= usage.reset <= 51
        assert int(await client.hget(window, "lo")) == recent
        assert not await client.hexists(window, f"r{old}")

        scope = Scope(name, f"key '{name}'", Quota(rpm=3, max_concurrent=1))
        ticket = await limiter.acquire([scope], 0)
        assert (ticket.usages[0].requests, ticket.usages[0].in_flight) == (3, 1)
        with pytest.raises(RateLimitError) as caught:
            await limiter.acquire([scope], 0)
        assert "concurrent requests" in caught.value.message
        await limiter.settle(ticket, 7)
        await limiter.aclose()  # waits for the settlement sent in the background
        limiter = RedisLimiter(redis_server.url, fail_open=False, log=make_logger(log))
        with pytest.raises(RateLimitError) as caught:
            await limiter.acquire([scope], 0)
        assert "Limit 3, Used 3" in caught.value.message
        assert 48 <= int(caught.value.headers["Retry-After"]) <= 51
        usage = await limiter.usage(name)
        assert (usage.requests, usage.tokens, usage.in_flight) == (3, 27, 0)
    finally:
        await limiter.aclose()
        await client.delete(window, leases)
        await client.aclose()
