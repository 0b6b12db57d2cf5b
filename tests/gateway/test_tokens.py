"""Token counting works offline, from the rank files bpe-openai ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.tokens import TokenCounter


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TokenCounter:
    # A fresh, empty tiktoken cache: the count must not depend on a download.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    return TokenCounter("cl100k_base")


def test_counts_known_strings(counter: TokenCounter) -> None:
    assert counter.count("hello world") == 2
    assert counter.count("") == 0


def test_chat_messages_include_framing(counter: TokenCounter) -> None:
    messages = [{"role": "user", "content": "hello world"}]
    assert counter.count_messages(messages) == 2 + 3 + 3
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]
    assert counter.count_messages(parts) == 8


def test_prompt_forms(counter: TokenCounter) -> None:
    assert counter.count_prompt("hello world") == 2
    assert counter.count_prompt(["hello world", "hello"]) == 3
    assert counter.count_prompt([5, 6, 7]) == 3
    assert counter.count_prompt([[1, 2], [3]]) == 3


def test_counts_of_texts_seen_before_are_remembered(counter: TokenCounter) -> None:
    history = [{"role": "user", "content": f"turn {n} " + "lorem ipsum " * 50} for n in range(40)]
    first = counter.count_messages(history)
    assert len(counter._counts) == 40
    assert counter.count_messages(history) == first  # same answer, nothing encoded again
    assert len(counter._counts) == 40
    encoding = counter.load()
    for text in ("lorem ipsum", "lorem ipsum!", history[3]["content"]):
        assert counter.count(text) == len(encoding.encode_ordinary(text))


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "hello world"}],
        [{"role": "system", "content": ""}, {"role": "user", "content": "hi there"}],
        # past the plain-text path: tool calls, parts, None content, one long text,
        # and more text than is counted exactly
        [{"role": "assistant", "content": "x", "tool_calls": [{"function": {"name": "f"}}]}],
        [{"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f"}}]}],
        [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        [{"role": "user", "content": "word " * 3000}],
        [{"role": "user", "content": "word " * 1500} for _ in range(10)],
    ],
)
def test_plain_text_messages_count_as_the_general_path_does(
    counter: TokenCounter, messages: list[dict[str, object]]
) -> None:
    assert counter.count_messages(messages) == counter._count_messages_tallied(messages)
