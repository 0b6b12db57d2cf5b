"""Rate limits (in memory, one replica), concurrency limits and request rules,
through a gateway process and the openai SDK."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from gateway.tokens import TokenCounter
from tests.gateway.conftest import auth_config
from tests.helpers import FakeUpstream, Gateway

KEYS = {name: f"sk-{name}-{secrets.token_hex(8)}" for name in ("rpm3", "tpm", "solo", "capped")}
KEYS["free"] = "sk-free-" + secrets.token_hex(8)
TPM = 200
USER = [{"role": "user", "content": "hello there"}]
SLOW = [{"role": "user", "content": "[slow] one two three four five six"}]
HEADERS = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("limits")
    auth = {
        "keys": [
            {"name": "rpm3", "key": "${KEY_RPM3}", "rpm": 3, "tpm": 100000},
            {"name": "tpm", "key": "${KEY_TPM}", "tpm": TPM},
            {"name": "solo", "key": "${KEY_SOLO}", "max_concurrent": 1},
            {"name": "capped", "key": "${KEY_CAPPED}", "max_tokens": 20},
            {"name": "free", "key": "${KEY_FREE}"},
        ],
        "limits": {"limited": {"rpm": 2}},
        "requests": {"max_messages": 3, "max_n": 2, "max_tokens": 50},
    }
    env = {f"KEY_{name.upper()}": key for name, key in KEYS.items()}
    server = Gateway(tmp, auth_config(upstream, tmp / "access.log", auth), env=env)
    yield server
    server.stop()


def client(gateway: Gateway, name: str) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=KEYS[name], max_retries=0)


def usage_of(gateway: Gateway, name: str) -> dict[str, int]:
    reply = httpx.get(
        gateway.base_url + "/gateway/keys/me", headers={"Authorization": f"Bearer {KEYS[name]}"}
    )
    return dict(reply.json()["usage"])


def test_rpm_allows_exactly_its_bound_then_429_with_headers(limited: Gateway) -> None:
    rpm3 = client(limited, "rpm3")
    for remaining in (2, 1, 0):
        reply = rpm3.chat.completions.with_raw_response.create(model="chat", messages=USER)
        assert reply.headers["x-ratelimit-limit-requests"] == "3"
        assert reply.headers["x-ratelimit-remaining-requests"] == str(remaining)
        assert reply.headers["x-ratelimit-limit-tokens"] == "100000"
        assert all(name in reply.headers for name in HEADERS)
    with pytest.raises(openai.RateLimitError) as caught:
        rpm3.chat.completions.create(model="chat", messages=USER)
    error = caught.value.response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert "requests per minute (RPM): Limit 3, Used 3" in error["message"]
    headers = caught.value.response.headers
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    # A refused request is not counted.
    assert usage_of(limited, "rpm3")["requests"] == 3


def text_of_tokens(counter: TokenCounter, prompt_tokens: int) -> str:
    """A user message whose prompt counts exactly ``prompt_tokens``, as the gateway counts."""
    words = ["hi"]
    while counter.count_messages([{"role": "user", "content": " ".join(words)}]) < prompt_tokens:
        words.append("hi")
    text = " ".join(words)
    assert counter.count_messages([{"role": "user", "content": text}]) == prompt_tokens
    return text


def test_tpm_counts_prompt_before_and_completion_after(limited: Gateway) -> None:
    tpm = client(limited, "tpm")
    counter = TokenCounter()
    first = tpm.chat.completions.create(model="chat", messages=USER)
    assert first.usage is not None
    used = first.usage.total_tokens
    # The whole usage is charged: the completion once known, not just the prompt counted.
    assert first.usage.total_tokens > counter.count_messages(USER)
    assert usage_of(limited, "tpm")["tokens"] == used

    over = text_of_tokens(counter, TPM - used + 1)
    with pytest.raises(openai.RateLimitError) as caught:
        tpm.chat.completions.create(model="chat", messages=[{"role": "user", "content": over}])
    assert f"tokens per minute (TPM): Limit {TPM}, Used {used}" in caught.value.message
    assert caught.value.response.headers["x-ratelimit-remaining-tokens"] == str(TPM - used)

    exact = text_of_tokens(counter, TPM - used)
    fits = tpm.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": exact}]
    )
    assert fits.headers["x-ratelimit-remaining-tokens"] == "0"
    assert usage_of(limited, "tpm")["tokens"] > TPM  # the completion overdrew the window
    with pytest.raises(openai.RateLimitError):
        tpm.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])


async def test_concurrency_limit_and_release_on_disconnect(limited: Gateway) -> None:
    solo = AsyncOpenAI(base_url=limited.base_url, api_key=KEYS["solo"], max_retries=0)
    stream = await solo.chat.completions.create(model="chat", messages=SLOW, stream=True)
    first = await anext(aiter(stream))
    assert first.choices[0].delta.content
    with pytest.raises(openai.RateLimitError) as caught:
        await solo.chat.completions.create(model="chat", messages=USER)
    assert "concurrent requests for API key 'solo': Limit 1" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "1"
    await stream.close()  # the client goes away mid-stream: its slot comes back
    deadline = time.monotonic() + 5
    while usage_of(limited, "solo")["in_flight"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    reply = await solo.chat.completions.create(model="chat", messages=USER)
    assert reply.choices[0].message.content
    assert usage_of(limited, "solo")["in_flight"] == 0
    await solo.close()


def test_per_model_limit_is_shared_by_all_callers(limited: Gateway) -> None:
    client(limited, "free").chat.completions.create(model="limited", messages=USER)
    embedded = client(limited, "capped").embeddings.with_raw_response.create(
        model="limited", input="count me too"
    )
    assert embedded.headers["x-ratelimit-remaining-requests"] == "0"  # the model's window
    with pytest.raises(openai.RateLimitError) as caught:
        client(limited, "free").chat.completions.create(model="limited", messages=USER)
    assert "model 'limited' on requests per minute (RPM): Limit 2" in caught.value.message
    assert caught.value.response.headers["x-ratelimit-limit-requests"] == "2"
    assert client(limited, "free").chat.completions.create(model="chat", messages=USER)


def test_too_many_messages_and_n_are_400_naming_the_field(limited: Gateway) -> None:
    free = client(limited, "free")
    with pytest.raises(openai.BadRequestError) as caught:
        free.chat.completions.create(model="chat", messages=USER * 4)
    error = caught.value.response.json()["error"]
    assert error["param"] == "messages" and "4 given, at most 3" in error["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        free.chat.completions.create(model="chat", messages=USER, n=3)
    assert caught.value.response.json()["error"]["param"] == "n"
    assert len(free.chat.completions.create(model="chat", messages=USER, n=2).choices) == 2


def test_max_tokens_clamped_to_the_smallest_cap(limited: Gateway, upstream: FakeUpstream) -> None:
    upstream.reset()
    client(limited, "free").chat.completions.create(model="chat", messages=USER, max_tokens=500)
    client(limited, "free").chat.completions.create(model="chat", messages=USER)
    client(limited, "capped").chat.completions.create(
        model="chat", messages=USER, max_completion_tokens=30
    )
    client(limited, "free").completions.create(model="chat", prompt="hi", max_tokens=7)
    sent = [r["body"] for r in upstream.requests()]
    assert sent[0]["max_tokens"] == 50  # the gateway's cap
    assert sent[1]["max_tokens"] == 50  # set even when the client sets none
    assert sent[2]["max_completion_tokens"] == 20 and "max_tokens" not in sent[2]  # key's cap
    assert sent[3]["max_tokens"] == 7  # under every cap: untouched


def test_max_tokens_refused_when_configured(tmp_path: Path, upstream: FakeUpstream) -> None:
    auth = {
        "keys": [{"name": "k", "key": "${K}"}],
        "requests": {"max_tokens": 50, "max_tokens_policy": "refuse"},
    }
    server = Gateway(tmp_path, auth_config(upstream, tmp_path / "a.log", auth), env={"K": "sk-k1"})
    try:
        k = OpenAI(base_url=server.base_url, api_key="sk-k1", max_retries=0)
        with pytest.raises(openai.BadRequestError) as caught:
            k.chat.completions.create(model="chat", messages=USER, max_completion_tokens=51)
        error = caught.value.response.json()["error"]
        assert error["param"] == "max_completion_tokens"
        assert "51 is above the limit of 50" in error["message"]
        assert k.chat.completions.create(model="chat", messages=USER, max_tokens=50)
    finally:
        server.stop()
