"""The adapter for a local engine: the OpenAI adapter on the engine's URL,
with vLLM's ``reasoning`` field renamed to ``reasoning_content``, able to
continue an answer another backend started (vLLM's continue_final_message),
and healthy only while the supervisor says the engine is ready."""

from __future__ import annotations

from adapters.config import OpenAIProviderConfig
from adapters.openai import OpenAIAdapter
from gateway.engines.handle import EngineHandle
from gateway.engines.presets import PRESETS


class EngineAdapter(OpenAIAdapter):
    system = "vllm"

    def __init__(self, handle: EngineHandle) -> None:
        self.handle = handle
        super().__init__(
            OpenAIProviderConfig(
                kind="openai",
                base_url=handle.base_url,
                timeouts=handle.config.timeouts,
                rename_reasoning=True,
                continuation=True,
            )
        )
        family = PRESETS.get(handle.config.family or "")
        self._reasoning_opener = family.reasoning_opener if family is not None else None

    async def health(self) -> str | None:
        if not self.handle.is_ready():
            return f"engine {self.handle.name} is {self.handle.state.value}"
        return await super().health()
