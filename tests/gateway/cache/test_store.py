"""The memory store (LRU with a TTL per entry) and the semantic search."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from gateway.cache.semantic import as_vector, nearest
from gateway.cache.store import MemoryStore


async def test_entries_expire_and_the_least_recently_used_go_first() -> None:
    store = MemoryStore(max_entries=2)
    await store.set("a", b"1", ttl=60)
    await store.set("b", b"2", ttl=60)
    assert await store.get("a") == b"1"  # a is now the most recently used
    await store.set("c", b"3", ttl=60)
    assert (await store.get("a"), await store.get("b"), await store.get("c")) == (b"1", None, b"3")
    await store.set("d", b"4", ttl=0.05)
    await asyncio.sleep(0.06)
    assert await store.get("d") is None


async def test_a_context_keeps_at_most_its_limit_of_vectors() -> None:
    store = MemoryStore(max_entries=10)
    for index in range(5):
        await store.add_vector("ctx", f"k{index}", b"v", ttl=60, limit=3)
    assert sorted(await store.vectors("ctx")) == ["k0", "k1", "k2"]


def test_nearest_finds_the_most_similar_above_the_threshold() -> None:
    candidates = {"x": as_vector([1, 0, 0]), "xy": as_vector([1, 1, 0]), "z": as_vector([0, 0, 1])}
    query = as_vector([1, 0.1, 0])
    assert query is not None and all(v is not None for v in candidates.values())
    found = nearest(query, candidates, 0.9)  # type: ignore[arg-type]
    assert found is not None and found[0] == "x" and found[1] > 0.99
    assert nearest(as_vector([0, 1, 0]) or b"", candidates, 0.9) is None  # type: ignore[arg-type]
    assert as_vector([0, 0, 0]) is None and as_vector(["a"]) is None  # type: ignore[list-item]


@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=3, max_size=3).filter(any))
def test_a_vector_is_its_own_nearest(values: list[float]) -> None:
    vector = as_vector(values)
    if vector is None:
        return
    found = nearest(vector, {"self": vector}, 0.999)
    assert found is not None and found[0] == "self"
