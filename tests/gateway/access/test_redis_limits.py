"""Limits shared through a real Redis: two gateway processes enforce one limit,
and a Redis that dies mid-test gives the configured behaviour."""

from __future__ import annotations

import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.gateway.conftest import auth_config
from tests.helpers import FakeUpstream, Gateway, RedisServer, wait_for

SHARED_KEY = "sk-shared-" + secrets.token_hex(8)
SOLO_KEY = "sk-solo-" + secrets.token_hex(8)
USER = [{"role": "user", "content": "hello there"}]
SLOW = [{"role": "user", "content": "[slow] one two three four five six"}]


def client(gateway: Gateway, key: str) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def ask(gateway: Gateway, key: str = SHARED_KEY) -> int:
    """The status of one chat request."""
    try:
        client(gateway, key).chat.completions.create(model="chat", messages=USER)
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def redis_gateway(
    tmp: Path, upstream: FakeUpstream, redis_url: str, auth: dict[str, Any]
) -> Gateway:
    config = auth_config(upstream, tmp / f"access-{secrets.token_hex(4)}.log", auth)
    config["redis_url"] = "${REDIS_URL}"
    return Gateway(
        tmp, config, env={"REDIS_URL": redis_url, "SHARED_KEY": SHARED_KEY, "SOLO_KEY": SOLO_KEY}
    )


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream, redis_server: RedisServer
) -> Iterator[tuple[Gateway, Gateway]]:
    tmp = tmp_path_factory.mktemp("replicas")
    auth = {
        "keys": [
            {"name": "shared", "key": "${SHARED_KEY}", "rpm": 4},
            {"name": "solo", "key": "${SOLO_KEY}", "max_concurrent": 1},
        ]
    }
    first = redis_gateway(tmp, upstream, redis_server.url, auth)
    second = redis_gateway(tmp, upstream, redis_server.url, auth)
    yield first, second
    first.stop()
    second.stop()


def test_two_replicas_enforce_one_rpm_limit(replicas: tuple[Gateway, Gateway]) -> None:
    first, second = replicas
    statuses = [ask(gateway) for gateway in (first, second, first, second)]
    assert statuses == [200, 200, 200, 200]
    assert ask(first) == 429
    assert ask(second) == 429
    with pytest.raises(openai.RateLimitError) as caught:
        client(second, SHARED_KEY).chat.completions.create(model="chat", messages=USER)
    assert "Limit 4, Used 4" in caught.value.message
    me = httpx.get(
        first.base_url + "/gateway/keys/me", headers={"Authorization": f"Bearer {SHARED_KEY}"}
    )
    assert me.json()["usage"]["requests"] == 4


def test_two_replicas_share_one_concurrency_limit(replicas: tuple[Gateway, Gateway]) -> None:
    first, second = replicas
    with client(first, SOLO_KEY).chat.completions.create(
        model="chat", messages=SLOW, stream=True
    ) as stream:
        assert next(iter(stream)).choices[0].delta.content
        with pytest.raises(openai.RateLimitError) as caught:
            client(second, SOLO_KEY).chat.completions.create(model="chat", messages=USER)
        assert "concurrent requests" in caught.value.message
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.endswith("six")
    wait_for(lambda: ask(second, SOLO_KEY) == 200, 5, "the second gateway admitting", every=0.1)


def test_redis_killed_mid_test_fail_open_and_fail_closed(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    redis = RedisServer(tmp_path)
    keys = [{"name": "shared", "key": "${SHARED_KEY}", "rpm": 3}]
    open_gw = redis_gateway(tmp_path, upstream, redis.url, {"keys": keys})
    closed_gw = redis_gateway(
        tmp_path, upstream, redis.url, {"keys": keys, "redis_failure": "fail_closed"}
    )
    try:
        assert [ask(open_gw), ask(closed_gw)] == [200, 200]  # 2 of 3, counted in Redis

        redis.stop(signal.SIGKILL)
        # Fail open: keeps serving with a per-replica limit of its own (3 fresh requests).
        assert [ask(open_gw) for _ in range(4)] == [200, 200, 200, 429]
        assert "redis unreachable: rate limits are per replica" in open_gw.log()
        # Fail closed: 503 in OpenAI's shape, with Retry-After.
        with pytest.raises(openai.InternalServerError) as caught:
            client(closed_gw, SHARED_KEY).chat.completions.create(model="chat", messages=USER)
        assert caught.value.status_code == 503
        assert caught.value.response.json()["error"]["type"] == "service_unavailable"
        assert caught.value.response.headers["retry-after"] == "1"
        assert "refusing requests until it is back (fail_closed)" in closed_gw.log()

        redis = RedisServer(tmp_path, port=redis.port)  # back, empty
        wait_for(lambda: ask(closed_gw) == 200, 5, "the fail-closed gateway admitting", every=0.1)
        assert "redis reachable again" in closed_gw.log()
        # Shared again: the two replicas count into the same (new) window.
        wait_for(lambda: ask(open_gw) == 200, 5, "the fail-open gateway admitting", every=0.1)
        assert ask(closed_gw) == 200
        assert ask(open_gw) == 429
        assert "redis reachable again" in open_gw.log()
    finally:
        open_gw.stop()
        closed_gw.stop()
        redis.stop()
