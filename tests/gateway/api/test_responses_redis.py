"""Conversation state in a real Redis: two gateway replicas share it, and a
Redis that dies mid-test gives the ``redis_failure`` behaviour."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.helpers import FakeUpstream, Gateway, RedisServer

KEY = "sk-state-" + secrets.token_hex(8)


def state_gateway(
    tmp: Path, upstream: FakeUpstream, redis_url: str, failure: str = "fail_open", keys: bool = True
) -> Gateway:
    """``keys=False``: an open gateway, whose rate limits never touch Redis, so
    only the state's own use of Redis is on trial."""
    auth: dict[str, Any] = {"redis_failure": failure}
    if keys:
        auth["keys"] = [{"name": "state", "key": "${KEY}"}]
    config: dict[str, Any] = {
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "alpha", "model": "m1"}]}},
        "auth": auth,
        "redis_url": "${REDIS_URL}",
        "state": {"backend": "redis", "ttl_days": 1},
    }
    return Gateway(tmp, config, env={"KEY": KEY, "REDIS_URL": redis_url})


def client(gateway: Gateway) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream, redis_server: RedisServer
) -> Iterator[tuple[Gateway, Gateway]]:
    tmp = tmp_path_factory.mktemp("state-replicas")
    first = state_gateway(tmp, upstream, redis_server.url)
    second = state_gateway(tmp, upstream, redis_server.url)
    yield first, second
    first.stop()
    second.stop()


def test_create_on_one_continue_read_and_delete_on_the_other(
    replicas: tuple[Gateway, Gateway], upstream: FakeUpstream
) -> None:
    one, two = (client(gateway) for gateway in replicas)
    first = one.responses.create(model="chat", input="started on one")
    second = two.responses.create(
        model="chat", input="continued on two", previous_response_id=first.id
    )
    assert [m["content"] for m in upstream.requests()[-1]["body"]["messages"]] == [
        "started on one",
        "alpha: started on one",
        "continued on two",
    ]
    third = one.responses.create(model="chat", input="back on one", previous_response_id=second.id)
    assert two.responses.retrieve(third.id).output_text == "alpha: back on one"
    items = list(two.responses.input_items.list(third.id, order="asc"))
    assert len(items) == 5
    two.responses.delete(third.id)
    with pytest.raises(openai.NotFoundError):
        one.responses.retrieve(third.id)
    assert one.responses.retrieve(second.id).id == second.id


def test_a_conversation_spans_replicas(replicas: tuple[Gateway, Gateway]) -> None:
    one, two = (client(gateway) for gateway in replicas)
    conversation = one.conversations.create(items=[{"role": "user", "content": "hi"}])
    two.responses.create(model="chat", input="from two", conversation=conversation.id)
    one.responses.create(model="chat", input="from one", conversation=conversation.id)
    items = list(two.conversations.items.list(conversation.id, order="asc"))
    assert [item.content[0].text for item in items] == [  # type: ignore[union-attr]
        "hi",
        "from two",
        "alpha: from two",
        "from one",
        "alpha: from one",
    ]


def test_redis_killed_mid_test(tmp_path: Path, upstream: FakeUpstream) -> None:
    redis = RedisServer(tmp_path)
    open_gateway = state_gateway(tmp_path, upstream, redis.url, "fail_open", keys=False)
    closed_gateway = state_gateway(tmp_path, upstream, redis.url, "fail_closed", keys=False)
    opened, closed = client(open_gateway), client(closed_gateway)
    try:
        before = opened.responses.create(model="chat", input="before the outage")
        assert closed.responses.retrieve(before.id).id == before.id
        redis.stop()

        # fail_closed: stateful requests get a clear 503; stateless ones still work.
        with pytest.raises(openai.InternalServerError) as caught:
            closed.responses.create(model="chat", input="store me")
        assert caught.value.status_code == 503 and "Redis" in caught.value.message
        with pytest.raises(openai.InternalServerError):
            closed.responses.retrieve(before.id)
        upstream.reset()
        with pytest.raises(openai.InternalServerError):
            closed.responses.create(model="chat", input="known down: refused at once")
        assert upstream.requests() == [], "no model runs for a response that cannot be kept"
        assert closed.responses.create(model="chat", input="x", store=False).output_text

        # fail_open: this replica keeps state in its memory meanwhile.
        during = opened.responses.create(model="chat", input="during the outage")
        follow = opened.responses.create(
            model="chat", input="still", previous_response_id=during.id
        )
        assert opened.responses.retrieve(follow.id).output_text == "alpha: still"

        # Redis is back: state is shared again, once each replica has tried it
        # again (a second after its last failure).
        redis = RedisServer(tmp_path, port=redis.port)
        time.sleep(1.2)
        after = closed.responses.create(model="chat", input="after the outage")
        assert opened.responses.retrieve(after.id).output_text == "alpha: after the outage"
        # What the open replica kept meanwhile is still readable there.
        assert opened.responses.retrieve(follow.id).output_text == "alpha: still"
    finally:
        open_gateway.stop()
        closed_gateway.stop()
        redis.stop()
