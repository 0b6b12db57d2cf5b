"""Fitting a conversation to its model's context window (``truncation``).

The window is the public model's (``max_model_len`` of the model, else of its
engines). ``truncation: auto`` drops the oldest messages (never the
instructions, never the newest) until the prompt and the requested output fit;
``disabled`` answers 400 ``context_length_exceeded`` before the backend is
called. With no known window the backend decides.

Counting: a bound first, free of any tokenizer (a byte-level BPE token covers
at least one byte of text; templates add a few tokens per message), so most
requests are never counted. Past the bound, a model served by a local vLLM
engine is counted by the engine itself (its ``POST /tokenize`` applies the
model's own chat template and tokenizer); other backends get the gateway's
tiktoken estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson

from adapters.config import OpenAIProviderConfig, ProviderConfig
from adapters.errors import ContextLengthError
from gateway.engines.adapter import EngineAdapter
from gateway.routing.model import PublicModel
from gateway.routing.target import Target
from gateway.tokens import TokenCounter

Body = dict[str, Any]
# Tokens a chat template may add around each message, and around the whole
# prompt (generation prompt, a default system prompt): generous on purpose.
TEMPLATE_PER_MESSAGE = 16
TEMPLATE_FIXED = 256
TOKENIZE_TIMEOUT = 5.0


def engine_tokenizers(providers: Mapping[str, ProviderConfig]) -> Callable[[Target], str | None]:
    """Where a target's engine tokenizes: ``engine/<name>`` targets, run here
    (their adapter knows the engine) or by the parent of ``--workers N`` (an
    OpenAI-compatible provider of the same name)."""

    def url(target: Target) -> str | None:
        if not target.name.startswith("engine/"):
            return None
        if isinstance(target.adapter, EngineAdapter):
            base = target.adapter.handle.base_url
        else:
            provider = providers.get(target.name.removeprefix("engine/"))
            if not isinstance(provider, OpenAIProviderConfig):
                return None
            base = provider.base_url
        return base.rstrip("/").removesuffix("/v1") + "/tokenize"

    return url


class ContextWindow:
    def __init__(self, tokens: TokenCounter, tokenize_url: Callable[[Target], str | None]) -> None:
        self._tokens = tokens
        self._tokenize_url = tokenize_url
        self._session: aiohttp.ClientSession | None = None

    async def fit(self, model: PublicModel, chat: Body, truncation: str, keep: int) -> int:
        """Make ``chat`` fit ``model``'s window, in place; the messages dropped.
        The first ``keep`` messages (the instructions) always stay."""
        window = model.context_window
        if window is None:
            return 0
        messages: list[Body] = chat["messages"]
        budget = window - int(chat.get("max_completion_tokens") or 1)
        if _upper_bound(messages, chat.get("tools")) <= budget:
            return 0
        count = await self._counter(model, chat)
        total = await count(messages)
        if total <= budget:
            return 0
        if truncation != "auto":
            raise _too_long(total, window, budget)
        return await self._truncate(chat, count, total, budget, keep, window)

    async def _truncate(
        self, chat: Body, count: Any, total: int, budget: int, keep: int, window: int
    ) -> int:
        messages: list[Body] = chat["messages"]
        estimates = [self._tokens.count_messages([m]) for m in messages]
        # The real count runs ahead of (or behind) the estimate by about this much.
        scale = total / max(1, sum(estimates))
        dropped = keep
        remaining = sum(estimates)
        last = len(messages) - 1  # the newest message always stays
        while True:
            while dropped < last and remaining * scale > budget:
                remaining -= estimates[dropped]
                dropped += 1
            # A conversation cannot open with a tool result whose call was dropped.
            while dropped < last and messages[dropped]["role"] == "tool":
                remaining -= estimates[dropped]
                dropped += 1
            kept = messages[:keep] + messages[dropped:]
            total = await count(kept)
            if total <= budget:
                chat["messages"] = kept
                return dropped - keep
            if dropped >= last:
                raise _too_long(total, window, budget, newest=True)
            remaining -= estimates[dropped]
            dropped += 1

    async def _counter(self, model: PublicModel, chat: Body) -> Any:
        """How to count this model's prompts: its engine, else tiktoken."""
        for target in sorted(model.targets, key=lambda t: t.tier):
            url = self._tokenize_url(target)
            if url is not None and target.available():
                return lambda messages: self._engine_count(url, target, chat, messages)

        async def estimate(messages: list[Body]) -> int:
            return self._tokens.count_messages(messages) + _tools_estimate(self._tokens, chat)

        return estimate

    async def _engine_count(
        self, url: str, target: Target, chat: Body, messages: list[Body]
    ) -> int:
        payload: Body = {"model": target.upstream_model, "messages": messages}
        if chat.get("tools"):
            payload["tools"] = chat["tools"]
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TOKENIZE_TIMEOUT)
            )
        try:
            async with self._session.post(
                url, data=orjson.dumps(payload), headers={"Content-Type": "application/json"}
            ) as reply:
                if reply.status == 200:
                    return int(orjson.loads(await reply.read())["count"])
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError, TypeError):
            pass
        # The engine could not count (busy, restarting): estimate rather than fail.
        return self._tokens.count_messages(messages) + _tools_estimate(self._tokens, chat)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _upper_bound(messages: list[Body], tools: Any) -> int:
    size = TEMPLATE_FIXED + TEMPLATE_PER_MESSAGE * len(messages)
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            size += len(content.encode())
        elif content:
            size += len(orjson.dumps(content))
        if message.get("tool_calls"):
            size += len(orjson.dumps(message["tool_calls"]))
    if tools:
        size += len(orjson.dumps(tools))
    return size


def _tools_estimate(tokens: TokenCounter, chat: Body) -> int:
    tools = chat.get("tools")
    return tokens.count(orjson.dumps(tools).decode()) if tools else 0


def _too_long(total: int, window: int, budget: int, newest: bool = False) -> ContextLengthError:
    reserved = window - budget
    detail = (
        f"{total} tokens for the input and {reserved} for the output, "
        f"in a context window of {window} tokens"
    )
    if newest:
        return ContextLengthError(
            f"Your input exceeds the context window of this model even with every older "
            f"item dropped ({detail}). Please shorten the input and try again.",
            param="input",
        )
    return ContextLengthError(
        f"Your input exceeds the context window of this model ({detail}). Please adjust "
        "your input and try again, or set truncation to 'auto' to drop the oldest items.",
        param="input",
    )
