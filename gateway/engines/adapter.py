"""The adapter for a local engine: the OpenAI adapter on the engine's URL,
with vLLM's ``reasoning`` field renamed to ``reasoning_content``.

Recent vLLM releases put a reasoning parser's output in ``reasoning``;
DeepSeek's API and most clients read ``reasoning_content``. Clients of the
gateway get one name whichever backend answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from adapters.openai import OpenAIAdapter
from gateway.config import OpenAIProviderConfig, Timeouts
from gateway.engines.handle import EngineHandle

Body = dict[str, Any]


def rename_reasoning(result: Body) -> Body:
    for choice in result.get("choices") or ():
        for key in ("message", "delta"):
            part = choice.get(key)
            if isinstance(part, dict) and "reasoning" in part:
                reasoning = part.pop("reasoning")
                if part.get("reasoning_content") is None:
                    part["reasoning_content"] = reasoning
    return result


class EngineAdapter:
    def __init__(self, handle: EngineHandle) -> None:
        self.handle = handle
        config = OpenAIProviderConfig(
            kind="openai", base_url=handle.base_url, timeouts=handle.config.timeouts
        )
        self._openai = OpenAIAdapter(config)

    async def chat(self, body: Body, timeouts: Timeouts) -> Body:
        return rename_reasoning(await self._openai.chat(body, timeouts))

    async def chat_stream(self, body: Body, timeouts: Timeouts) -> AsyncIterator[Body]:
        # Closing this stream (client gone) must close the engine's stream too.
        async with aclosing(self._openai.chat_stream(body, timeouts)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                yield rename_reasoning(chunk)

    async def completions(self, body: Body, timeouts: Timeouts) -> Body:
        return await self._openai.completions(body, timeouts)

    def completions_stream(self, body: Body, timeouts: Timeouts) -> AsyncIterator[Body]:
        return self._openai.completions_stream(body, timeouts)

    async def embeddings(self, body: Body, timeouts: Timeouts) -> Body:
        return await self._openai.embeddings(body, timeouts)

    async def list_models(self) -> list[str]:
        return await self._openai.list_models()

    async def health(self) -> bool:
        return self.handle.is_ready() and await self._openai.health()

    async def aclose(self) -> None:
        await self._openai.aclose()
