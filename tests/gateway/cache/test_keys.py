"""Cache keys and eligibility: what makes two requests the same answer."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cache.keys import cache_control, context_key, eligible, exact_key, last_user_text

BODY: dict[str, Any] = {
    "model": "chat",
    "messages": [{"role": "user", "content": "Hi"}],
    "temperature": 0,
    "max_tokens": 10,
}


def key(body: dict[str, Any], scope: str = "key:a") -> str:
    return exact_key(scope, "chat", "chat", body)


def test_fields_that_do_not_change_the_answer_do_not_change_the_key() -> None:
    same = {
        **BODY,
        "user": "u-1",
        "metadata": {"run": "1"},
        "stream_options": {"include_usage": True},
        "store": False,
        "seed": None,
    }
    assert key(same) == key(BODY) == key(dict(reversed(list(BODY.items()))))


@pytest.mark.parametrize(
    "change",
    [
        {"max_tokens": 11},
        {"temperature": 0.1},
        {"top_p": 0.5},
        {"stop": ["\n"]},
        {"seed": 3},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"messages": [{"role": "user", "content": "Hi!"}]},
        {"stream": True},
    ],
)
def test_every_sampling_field_and_the_messages_are_in_the_key(change: dict[str, Any]) -> None:
    assert key({**BODY, **change}) != key(BODY)


def test_the_key_is_scoped_to_the_caller_model_and_endpoint() -> None:
    assert key(BODY, "key:a") != key(BODY, "key:b")
    assert exact_key("s", "chat", "chat", BODY) != exact_key("s", "other", "chat", BODY)
    assert exact_key("s", "chat", "chat", BODY) != exact_key("s", "chat", "completions", BODY)


@pytest.mark.parametrize(
    ("operation", "change", "mode", "expected"),
    [
        ("chat", {}, True, True),
        ("chat", {"temperature": 0.7}, True, False),
        ("chat", {"temperature": None}, True, False),  # the default temperature samples
        ("chat", {"n": 2}, True, False),
        ("completions", {"best_of": 3}, True, False),
        ("chat", {"temperature": 0.7, "n": 2}, "always", True),
        ("embeddings", {"temperature": None}, True, True),
    ],
)
def test_only_deterministic_requests_are_cached_under_true(
    operation: str, change: dict[str, Any], mode: bool | str, expected: bool
) -> None:
    body = {k: v for k, v in {**BODY, **change}.items() if v is not None}
    assert eligible(operation, body, mode) is expected  # type: ignore[arg-type]


def test_cache_control_directives() -> None:
    assert cache_control({}) == cache_control({"Cache-Control": "max-age=0"})
    both = cache_control({"Cache-Control": "No-Cache, no-store"})
    assert both.no_cache and both.no_store
    assert not cache_control({"Cache-Control": "no-store"}).no_cache


def test_the_semantic_context_is_the_request_without_its_last_question() -> None:
    def body(question: str, system: str = "Be brief.") -> dict[str, Any]:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        return {**BODY, "messages": messages}

    first, second = body("What is the capital of France?"), body("Capital of France?")
    assert last_user_text(first) == (1, "What is the capital of France?")
    assert context_key("s", "chat", "chat", first, 1) == context_key("s", "chat", "chat", second, 1)
    other = body("What is the capital of France?", system="Answer in French.")
    assert context_key("s", "chat", "chat", first, 1) != context_key("s", "chat", "chat", other, 1)
    text_parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    parts = {"role": "user", "content": text_parts}
    assert last_user_text({"messages": [parts]}) == (0, "a\nb")
