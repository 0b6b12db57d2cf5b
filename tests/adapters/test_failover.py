"""Cross-kind failover: a model whose tier-1 target is an OpenAI-compatible
upstream that fails, and whose tier-2 target is ``kind: anthropic``, answers
the client with one normal OpenAI response (and the other way round)."""

from __future__ import annotations

from openai import OpenAI

from tests.adapters.support import FakeVendor
from tests.helpers import FakeUpstream

HELLO = [{"role": "user", "content": "are you there"}]


def test_a_failing_openai_upstream_falls_back_to_anthropic(
    client: OpenAI, broken: FakeUpstream, anthropic: FakeVendor
) -> None:
    broken.faults({"status": 503})
    response = client.chat.completions.with_raw_response.create(model="failover", messages=HELLO)
    completion = response.parse()
    assert response.headers["x-gateway-target"] == "claude/claude-test"
    assert completion.object == "chat.completion" and completion.model == "failover"
    assert completion.choices[0].message.content == "claude: are you there"
    assert completion.choices[0].finish_reason == "stop"
    assert [r["path"] for r in broken.requests()] == ["/v1/chat/completions"]
    assert len(anthropic.requests()) == 1


def test_a_failing_openai_stream_falls_back_to_anthropic_before_the_first_byte(
    client: OpenAI, broken: FakeUpstream, anthropic: FakeVendor
) -> None:
    broken.faults({"status": 503})
    chunks = list(
        client.chat.completions.create(
            model="failover", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "claude: are you there"
    )
    assert all(c.model == "failover" for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


def test_an_unreachable_upstream_falls_back_to_anthropic(
    client: OpenAI, anthropic: FakeVendor
) -> None:
    completion = client.chat.completions.create(model="failover-down", messages=HELLO)
    assert completion.choices[0].message.content == "claude: are you there"


def test_anthropic_overloaded_falls_back_to_gemini(
    client: OpenAI, anthropic: FakeVendor, gemini: FakeVendor
) -> None:
    anthropic.faults({"status": 529})
    response = client.chat.completions.with_raw_response.create(
        model="failover-overloaded", messages=HELLO
    )
    assert response.headers["x-gateway-target"] == "gem/gemini-test"
    assert response.parse().choices[0].message.content == "gemini: are you there"
    assert len(anthropic.requests()) == 1 and len(gemini.requests()) == 1
