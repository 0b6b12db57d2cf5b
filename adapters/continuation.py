"""Requests that continue an answer another backend started (mid-stream
failover): pure functions of the original request and the ``Partial``
answer the client already has."""

from __future__ import annotations

from adapters.base import Body, Partial

_LIMITS = ("max_completion_tokens", "max_tokens")


def budget_left(body: Body, partial: Partial) -> Body:
    """``body`` with its completion-token limits lowered by what was already
    generated, so the whole answer keeps the limit the client set."""
    changed = {
        name: max(1, body[name] - partial.tokens)
        for name in _LIMITS
        if isinstance(body.get(name), int)
    }
    return {**body, **changed} if changed else body


def openai_continuation(
    operation: str, body: Body, partial: Partial, reasoning_opener: str | None = None
) -> Body | None:
    """vLLM's way (and that of OpenAI-compatible servers built on it): the
    partial answer as the last, unfinished assistant message, with
    ``continue_final_message`` and no new generation prompt. An answer cut
    while reasoning is continued only where the model's reasoning is opened
    by a known marker in its text (``reasoning_opener``, e.g. DeepSeek-R1's
    ``<think>``); a text completion continues from its prompt plus the text."""
    body = budget_left(body, partial)
    if operation == "completions":
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            return None
        return {**body, "prompt": prompt + partial.content}
    if partial.in_reasoning:
        if reasoning_opener is None:
            return None
        text = reasoning_opener + partial.reasoning
    else:
        text = partial.content
    messages = [*body["messages"], {"role": "assistant", "content": text}]
    return {
        **body,
        "messages": messages,
        "continue_final_message": True,
        "add_generation_prompt": False,
    }


def prefill_continuation(operation: str, body: Body, partial: Partial) -> Body | None:
    """Anthropic's way: a trailing assistant message is the start of the
    answer (prefill), without trailing white space, which the API refuses."""
    if operation != "chat" or partial.in_reasoning:
        return None
    text = partial.content.rstrip()
    if not text:
        return None
    body = budget_left(body, partial)
    return {**body, "messages": [*body["messages"], {"role": "assistant", "content": text}]}
