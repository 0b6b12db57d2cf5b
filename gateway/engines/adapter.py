"""The adapter for a local engine: the OpenAI adapter on the engine's URL,
with vLLM's ``reasoning`` field renamed to ``reasoning_content``, and healthy
only while the supervisor says the engine is ready."""

from __future__ import annotations

from adapters.config import OpenAIProviderConfig
from adapters.openai import OpenAIAdapter
from gateway.engines.handle import EngineHandle


class EngineAdapter(OpenAIAdapter):
    def __init__(self, handle: EngineHandle) -> None:
        self.handle = handle
        super().__init__(
            OpenAIProviderConfig(
                kind="openai",
                base_url=handle.base_url,
                timeouts=handle.config.timeouts,
                rename_reasoning=True,
            )
        )

    async def health(self) -> str | None:
        if not self.handle.is_ready():
            return f"engine {self.handle.name} is {self.handle.state.value}"
        return await super().health()
