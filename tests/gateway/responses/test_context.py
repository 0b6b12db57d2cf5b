"""truncation against a known context window, counted with the gateway's
tiktoken estimate (a model without a local engine)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from adapters.errors import ContextLengthError
from gateway.config.schema import ModelConfig, RetryConfig
from gateway.responses.context import ContextWindow, engine_tokenizers
from gateway.routing.model import PublicModel, make_model
from gateway.tokens import TokenCounter

TOKENS = TokenCounter()
WORDS = " ".join(["lorem"] * 200)  # about 200 tokens


def model(window: int | None) -> PublicModel:
    config = ModelConfig.model_validate(
        {"targets": [{"provider": "p", "model": "m"}], "max_model_len": window}
    )
    return make_model("m", [], config, RetryConfig(), 0, random.Random(0))


def conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "instructions"}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"question {turn} {WORDS}"})
        messages.append({"role": "assistant", "content": f"answer {turn} {WORDS}"})
    messages.append({"role": "user", "content": "the newest question"})
    return messages


async def fit(
    window: int | None,
    messages: list[dict[str, Any]],
    truncation: str,
    max_tokens: int | None = None,
) -> tuple[int, dict[str, Any]]:
    chat: dict[str, Any] = {"model": "m", "messages": messages}
    if max_tokens is not None:
        chat["max_completion_tokens"] = max_tokens
    window_ = ContextWindow(TOKENS, engine_tokenizers({}))
    try:
        return await window_.fit(model(window), chat, truncation, keep=1), chat
    finally:
        await window_.aclose()


async def test_a_conversation_that_fits_is_untouched() -> None:
    messages = conversation(2)
    dropped, chat = await fit(4000, messages, "disabled")
    assert dropped == 0 and chat["messages"] == messages


async def test_unknown_window_is_the_backends_call() -> None:
    dropped, chat = await fit(None, conversation(20), "disabled")
    assert dropped == 0 and len(chat["messages"]) == 42


async def test_disabled_refuses_before_the_backend() -> None:
    with pytest.raises(ContextLengthError) as caught:
        await fit(1000, conversation(5), "disabled")
    error = caught.value
    assert (error.status, error.code, error.param) == (400, "context_length_exceeded", "input")
    assert "context window of 1000 tokens" in error.message


async def test_auto_drops_the_oldest_keeping_instructions_and_newest() -> None:
    messages = conversation(5)
    dropped, chat = await fit(1000, messages, "auto", max_tokens=100)
    kept = chat["messages"]
    assert dropped > 0 and kept[0] == messages[0] and kept[-1] == messages[-1]
    assert kept[1:] == messages[1 + dropped :]
    assert TOKENS.count_messages(kept) <= 900
    # As many turns as fit are kept: one more would not have fit.
    wider = [messages[0], *messages[dropped:]]
    assert TOKENS.count_messages(wider) > 900


async def test_auto_never_opens_with_an_orphan_tool_result() -> None:
    messages = [
        {"role": "system", "content": "instructions"},
        {"role": "user", "content": WORDS},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": WORDS},
        {"role": "user", "content": "and now?"},
    ]
    _, chat = await fit(150, messages, "auto")
    assert [m["role"] for m in chat["messages"]] == ["system", "user"]


async def test_auto_refuses_when_the_newest_alone_is_too_long() -> None:
    messages = [{"role": "user", "content": WORDS * 3}]
    with pytest.raises(ContextLengthError) as caught:
        await fit(300, messages, "auto")
    assert "even with every older item dropped" in caught.value.message
