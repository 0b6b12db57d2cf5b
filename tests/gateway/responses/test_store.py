"""The stores, memory and a real Redis, behave alike: threads, owners,
expiry, conversations; memory is LRU-bounded; Redis down follows redis_failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapters.errors import InvalidRequestError, UpstreamUnavailableError
from gateway.observability.logs import make_logger
from gateway.responses.redis_store import RedisStore, ResilientStore
from gateway.responses.store import MemoryStore, Store, StoredResponse
from tests.helpers import RedisServer, free_port

Body = dict[str, Any]


def item(text: str) -> Body:
    return {
        "id": f"msg_{text}",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
        "status": "completed",
    }


def record(response_id: str, start: int, n_input: int, n_output: int) -> StoredResponse:
    return StoredResponse(
        id=response_id,
        response={"id": response_id, "object": "response", "output": []},
        start=start,
        input_end=start + n_input,
        end=start + n_input + n_output,
    )


@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="function")
async def store(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[Store]:
    if request.param == "memory":
        made: Store = MemoryStore(100, 60.0, 5)
    else:
        made = RedisStore(redis_server.url, 60.0, 5)
    yield made
    await made.aclose()


async def chain(store: Store, owner: str, turns: int) -> list[StoredResponse]:
    """``turns`` responses, each continuing the last: two items per turn."""
    made: list[StoredResponse] = []
    history: list[Body] = []
    for turn in range(turns):
        suffix = f"{owner}{turn}-{id(store)}"
        new = [item(f"q{suffix}"), item(f"a{suffix}")]
        stored = record(f"resp_{suffix}", len(history), 1, 1)
        parent = made[-1] if made else None
        await store.put_response(owner, stored, history, new, parent)
        made.append(await store.get_response(owner, stored.id) or stored)
        history = history + new
    return made


async def test_a_chain_is_one_thread_read_back_whole(store: Store) -> None:
    made = await chain(store, "key:a", 3)
    last = made[-1]
    assert len({r.thread for r in made}) == 1, "continuing the newest appends to its thread"
    items = await store.thread(last, last.end)
    assert [i["id"][4:6] for i in items] == ["qk", "ak", "qk", "ak", "qk", "ak"]
    assert await store.thread(made[0], made[0].end) == items[:2]
    assert (await store.get_response("key:a", last.id)).body()["id"] == last.id


async def test_continuing_an_older_response_forks(store: Store) -> None:
    made = await chain(store, "key:f", 3)
    first = made[0]
    history = await store.thread(first, first.end)
    fork = record(f"resp_fork{id(store)}", len(history), 1, 1)
    await store.put_response("key:f", fork, history, [item("x"), item("y")], first)
    assert fork.thread != first.thread
    forked = await store.thread(fork, fork.end)
    assert [i["id"] for i in forked] == [*(i["id"] for i in history), "msg_x", "msg_y"]
    # The original chain is untouched.
    assert len(await store.thread(made[-1], made[-1].end)) == 6


async def test_another_owner_sees_nothing(store: Store) -> None:
    [made] = await chain(store, "key:owner", 1)
    assert await store.get_response("jwt:someone", made.id) is None
    assert not await store.delete_response("jwt:someone", made.id)
    assert await store.get_response("key:owner", made.id) is not None


async def test_deleting_the_newest_drops_its_items(store: Store) -> None:
    made = await chain(store, "key:d", 2)
    assert await store.delete_response("key:d", made[1].id)
    assert await store.get_response("key:d", made[1].id) is None
    assert len(await store.thread(made[0], 10)) == 2
    assert not await store.delete_response("key:d", made[1].id)


async def test_conversations(store: Store) -> None:
    owner, conv = "key:c", f"conv_{id(store)}"
    await store.create_conversation(owner, {"id": conv, "metadata": {}}, [item("1"), item("2")])
    assert await store.add_items(owner, conv, [item("3")], enforce=True)
    with pytest.raises(InvalidRequestError) as caught:
        await store.add_items(owner, conv, [item("4"), item("5"), item("6")], enforce=True)
    assert caught.value.code == "conversation_too_long"
    assert [i["id"] for i in await store.conversation_items(owner, conv)] == [
        "msg_1",
        "msg_2",
        "msg_3",
    ]
    assert (await store.get_item(owner, conv, "msg_2"))["content"][0]["text"] == "2"
    assert await store.delete_item(owner, conv, "msg_2")
    assert not await store.delete_item(owner, conv, "msg_2")
    assert [i["id"] for i in await store.conversation_items(owner, conv)] == ["msg_1", "msg_3"]
    assert await store.update_conversation(owner, {"id": conv, "metadata": {"k": "v"}})
    assert (await store.get_conversation(owner, conv))["metadata"] == {"k": "v"}
    assert await store.conversation_items("key:other", conv) is None
    assert not await store.add_items("key:other", conv, [item("7")], enforce=False)
    assert await store.delete_conversation(owner, conv)
    assert await store.get_conversation(owner, conv) is None
    assert await store.conversation_items(owner, conv) is None


async def test_objects_expire(redis_server: RedisServer) -> None:
    for short in (MemoryStore(100, 0.2, 10), RedisStore(redis_server.url, 0.2, 10)):
        [made] = await chain(short, "key:ttl", 1)
        await short.create_conversation("key:ttl", {"id": "conv_ttl", "metadata": {}}, [])
        assert await short.get_response("key:ttl", made.id) is not None
        await asyncio.sleep(0.35)
        assert await short.get_response("key:ttl", made.id) is None
        assert await short.get_conversation("key:ttl", "conv_ttl") is None
        await short.aclose()


async def test_memory_keeps_the_most_recently_used() -> None:
    store = MemoryStore(3, None, 10)
    made = await chain(store, "key:lru", 3)
    await store.get_response("key:lru", made[0].id)  # used: the second is now the oldest
    await store.create_conversation("key:lru", {"id": "conv_new", "metadata": {}}, [])
    assert await store.get_response("key:lru", made[1].id) is None
    assert await store.get_response("key:lru", made[0].id) is not None
    # An evicted response's items stay while a later one of its chain needs them.
    assert len(await store.thread(made[2], made[2].end)) == 6


async def test_redis_down_fails_open_to_memory_then_closed_to_503(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    log = make_logger()
    opened = ResilientStore(
        RedisStore(redis.url, 60, 10), MemoryStore(10, 60, 10), fail_open=True, log=log
    )
    closed = ResilientStore(
        RedisStore(redis.url, 60, 10), MemoryStore(10, 60, 10), fail_open=False, log=log
    )
    try:
        [shared] = await chain(opened, "key:r", 1)
        assert await closed.get_response("key:r", shared.id) is not None
        redis.stop()
        # Open: written to this replica's memory, and readable from it.
        [local] = await chain(opened, "key:r", 1)
        assert await opened.get_response("key:r", local.id) is not None
        assert opened.status == "redis-unreachable"
        # Closed: a clear 503, at once for writes known to fail.
        with pytest.raises(UpstreamUnavailableError):
            await closed.get_response("key:r", shared.id)
        with pytest.raises(UpstreamUnavailableError):
            closed.check_writable()
    finally:
        redis.stop()
        await opened.aclose()
        await closed.aclose()


def test_a_free_port_is_not_redis() -> None:
    """The closed store's first contact with a dead Redis is the 503 itself."""

    async def first_contact() -> None:
        url = f"redis://127.0.0.1:{free_port()}/0"
        log = make_logger()
        store = ResilientStore(
            RedisStore(url, 60, 10), MemoryStore(10, 60, 10), fail_open=False, log=log
        )
        try:
            with pytest.raises(UpstreamUnavailableError):
                await store.create_conversation("key:x", {"id": "conv_x", "metadata": {}}, [])
        finally:
            await store.aclose()

    asyncio.run(first_contact())
