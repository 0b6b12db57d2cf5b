"""Response caching through real gateway processes in front of the fake
upstream, with the OpenAI SDK: hits, misses, bypasses and their headers,
caller isolation, TTL, streams replayed chunk for chunk, guardrail
placeholders in cached answers, and a Redis cache shared by two replicas."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.gateway.observability.scrape import scrape
from tests.helpers import FakeUpstream, Gateway, RedisServer

KEYS = {"team-a": "sk-team-a-0123456789", "team-b": "sk-team-b-0123456789"}


def cache_config(upstream: FakeUpstream, **cache: Any) -> dict[str, Any]:
    target = [{"provider": "alpha", "model": "m1"}]
    keys = [
        {"name": name, "key_sha256": hashlib.sha256(secret.encode()).hexdigest()}
        for name, secret in KEYS.items()
    ]
    return {
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "auth": {"keys": keys},
        "guardrails": {"pii": {"kind": "pii", "restore_in_response": True}},
        "cache": {"ttl_seconds": 60, **cache},
        "models": {
            "chat": {"targets": target, "cache": True},
            "creative": {"targets": target, "cache": "always"},
            "private": {"targets": target, "cache": True, "guardrails": {"input": ["pii"]}},
            "fresh": {"targets": target},
            "embed": {"targets": target, "cache": True},
        },
    }


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    server = FakeUpstream(tmp_path_factory.mktemp("cache-upstream"), "alpha")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Gateway]:
    server = Gateway(tmp_path_factory.mktemp("cache-memory"), cache_config(upstream))
    yield server
    server.stop()


def client(gateway: Gateway, key: str = "team-a") -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=KEYS[key], max_retries=0)


def question() -> list[dict[str, str]]:
    """A question no other test asks."""
    return [{"role": "user", "content": f"What is {uuid.uuid4().hex}?"}]


def calls(upstream: FakeUpstream, messages: list[dict[str, str]]) -> int:
    """How many requests with these messages reached the upstream."""
    return sum(1 for r in upstream.requests() if (r["body"] or {}).get("messages") == messages)


def chat(
    gateway: Gateway, messages: list[dict[str, str]], key: str = "team-a", **extra: Any
) -> tuple[str, dict[str, str]]:
    """The answer's text and its headers."""
    extra.setdefault("temperature", 0)
    raw = client(gateway, key).chat.completions.with_raw_response.create(
        model=extra.pop("model", "chat"), messages=messages, **extra
    )
    return raw.parse().choices[0].message.content or "", dict(raw.headers)


def test_a_repeated_question_is_answered_from_the_cache(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    messages = question()
    first, headers = chat(gateway, messages)
    assert headers["x-gateway-cache"] == "miss" and headers["x-gateway-target"] == "alpha/m1"
    again, headers = chat(gateway, messages)
    assert again == first
    assert headers["x-gateway-cache"] == "hit" and headers["x-gateway-target"] == "cache"
    assert calls(upstream, messages) == 1
    # Any sampling field is part of the key.
    _, headers = chat(gateway, messages, max_tokens=5)
    assert headers["x-gateway-cache"] == "miss"


def test_cache_control_no_cache_skips_the_lookup_and_no_store_the_storing(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    messages = question()
    _, headers = chat(gateway, messages, extra_headers={"Cache-Control": "no-store"})
    assert headers["x-gateway-cache"] == "miss"
    _, headers = chat(gateway, messages)
    assert headers["x-gateway-cache"] == "miss"  # nothing was stored
    _, headers = chat(gateway, messages, extra_headers={"Cache-Control": "no-cache"})
    assert headers["x-gateway-cache"] == "bypass"
    assert calls(upstream, messages) == 3
    _, headers = chat(gateway, messages)
    assert headers["x-gateway-cache"] == "hit"


def test_sampling_requests_are_cached_only_under_cache_always(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    messages = question()
    for _ in range(2):
        _, headers = chat(gateway, messages, temperature=0.8)
        assert headers["x-gateway-cache"] == "bypass"
    _, headers = chat(gateway, messages, n=2)
    assert headers["x-gateway-cache"] == "bypass"
    assert calls(upstream, messages) == 3
    statuses = [chat(gateway, messages, model="creative", temperature=0.8)[1] for _ in range(2)]
    assert [h["x-gateway-cache"] for h in statuses] == ["miss", "hit"]
    # A model without caching says nothing about it.
    assert "x-gateway-cache" not in chat(gateway, messages, model="fresh")[1]


def test_one_caller_never_gets_anothers_answer(gateway: Gateway, upstream: FakeUpstream) -> None:
    messages = question()
    assert chat(gateway, messages, key="team-a")[1]["x-gateway-cache"] == "miss"
    assert chat(gateway, messages, key="team-b")[1]["x-gateway-cache"] == "miss"
    assert chat(gateway, messages, key="team-b")[1]["x-gateway-cache"] == "hit"
    assert calls(upstream, messages) == 2


def test_a_cached_stream_is_replayed_chunk_for_chunk(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    messages = [{"role": "user", "content": f"Tell me about {uuid.uuid4().hex} in detail"}]

    def stream(**extra: Any) -> tuple[list[Any], str]:
        raw = client(gateway).chat.completions.with_raw_response.create(
            model="chat", messages=messages, temperature=0, stream=True, **extra
        )
        chunks = [c.model_dump(exclude={"usage"}) for c in raw.parse()]
        return chunks, raw.headers["x-gateway-cache"]

    fresh, status = stream()
    assert status == "miss" and len(fresh) > 5
    replayed, status = stream()
    assert status == "hit"
    assert replayed == fresh  # same chunks, same pieces, same order
    with_usage, status = stream(stream_options={"include_usage": True})
    assert status == "hit" and with_usage[-1]["choices"] == []
    assert calls(upstream, messages) == 1
    # A plain request is cached on its own.
    assert chat(gateway, messages)[1]["x-gateway-cache"] == "miss"


def test_cached_answers_keep_placeholders_so_each_caller_gets_its_own_values(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    tag = uuid.uuid4().hex
    first = [{"role": "user", "content": f"Sign {tag} as ann@example.com"}]
    second = [{"role": "user", "content": f"Sign {tag} as bob@example.org"}]
    answer, headers = chat(gateway, first, model="private")
    assert headers["x-gateway-cache"] == "miss"
    assert answer == f"alpha: Sign {tag} as ann@example.com"
    answer, headers = chat(gateway, second, model="private")
    assert headers["x-gateway-cache"] == "hit"
    assert answer == f"alpha: Sign {tag} as bob@example.org"
    sent = [r["body"]["messages"][0]["content"] for r in upstream.requests() if tag in str(r)]
    assert sent == [f"Sign {tag} as [EMAIL_1]"]


def test_embeddings_are_cached(gateway: Gateway, upstream: FakeUpstream) -> None:
    text = f"embed {uuid.uuid4().hex}"
    api = client(gateway).embeddings
    first = api.with_raw_response.create(model="embed", input=text)
    second = api.with_raw_response.create(model="embed", input=text)
    assert [first.headers["x-gateway-cache"], second.headers["x-gateway-cache"]] == ["miss", "hit"]
    assert second.parse().data[0].embedding == first.parse().data[0].embedding
    assert sum(1 for r in upstream.requests() if (r["body"] or {}).get("input") == text) == 1


def test_hits_misses_and_tokens_saved_are_counted(gateway: Gateway) -> None:
    before = scrape(gateway.url)
    messages = question()
    chat(gateway, messages)
    chat(gateway, messages)
    chat(gateway, messages, temperature=1)
    after = scrape(gateway.url)
    name = "vllm_gateway_cache_requests_total"

    def grew(result: str) -> float:
        labels = {"model": "chat", "result": result}
        return after.series(name, **labels).get(frozenset(labels.items()), 0) - before.series(
            name, **labels
        ).get(frozenset(labels.items()), 0)

    assert (grew("hit"), grew("miss"), grew("bypass")) == (1, 1, 1)
    saved = "vllm_gateway_cache_tokens_saved_total"
    assert after.value(saved, model="chat") > before.series(saved).get(
        frozenset({"model": "chat"}.items()), 0
    )


def test_entries_expire_after_their_ttl(tmp_path: Path, upstream: FakeUpstream) -> None:
    gateway = Gateway(tmp_path, cache_config(upstream, ttl_seconds=1))
    try:
        messages = question()
        assert chat(gateway, messages)[1]["x-gateway-cache"] == "miss"
        assert chat(gateway, messages)[1]["x-gateway-cache"] == "hit"
        time.sleep(1.2)
        assert chat(gateway, messages)[1]["x-gateway-cache"] == "miss"
        assert calls(upstream, messages) == 2
    finally:
        gateway.stop()


def test_two_replicas_share_one_redis_cache(
    tmp_path: Path, upstream: FakeUpstream, redis_server: RedisServer
) -> None:
    config = {
        **cache_config(upstream, backend="redis", shared=True),
        "redis_url": redis_server.url,
    }
    first, second = Gateway(tmp_path, config), Gateway(tmp_path, config)
    try:
        messages = question()
        assert chat(first, messages, key="team-a")[1]["x-gateway-cache"] == "miss"
        # Another replica, another caller: shared: true serves them all.
        answer, headers = chat(second, messages, key="team-b")
        assert headers["x-gateway-cache"] == "hit" and answer == f"alpha: {messages[0]['content']}"
        assert calls(upstream, messages) == 1
    finally:
        first.stop()
        second.stop()


def test_an_unreachable_redis_is_a_miss_never_a_failed_request(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    redis = RedisServer(tmp_path)
    config = {**cache_config(upstream, backend="redis"), "redis_url": redis.url}
    gateway = Gateway(tmp_path, config)
    try:
        messages = question()
        assert chat(gateway, messages)[1]["x-gateway-cache"] == "miss"
        assert chat(gateway, messages)[1]["x-gateway-cache"] == "hit"
        redis.stop()
        for _ in range(3):
            began = time.monotonic()
            answer, headers = chat(gateway, messages)
            assert headers["x-gateway-cache"] == "miss" and answer.startswith("alpha: ")
            assert time.monotonic() - began < 1.0  # no waiting on the dead Redis
        # Redis comes back (empty): after a second the cache is used again.
        redis = RedisServer(tmp_path, port=redis.port)
        time.sleep(1.1)
        assert chat(gateway, messages)[1]["x-gateway-cache"] == "miss"
        assert chat(gateway, messages)[1]["x-gateway-cache"] == "hit"
        assert gateway.log().count("cache.unavailable") == 1
    finally:
        gateway.stop()
        redis.stop()
