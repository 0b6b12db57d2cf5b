"""``kind: openai``: any OpenAI-compatible API (OpenAI, DeepSeek, vLLM, Ollama, ...).

The request body is already OpenAI's, so this adapter only adds the
provider's credentials and moves bytes; DeepSeek's and vLLM's extras such as
``reasoning_content`` pass through untouched (``rename_reasoning`` gives vLLM's
``reasoning`` field DeepSeek's name).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from adapters.base import Partial
from adapters.client import ProviderClient, transport_settings
from adapters.config import (
    DEFAULT_MAX_EVENT_BYTES,
    OpenAIProviderConfig,
    ProviderConnection,
    Timeouts,
)
from adapters.continuation import openai_continuation
from adapters.errors import UpstreamError
from adapters.transport.sse import ChunkDecoder

Body = dict[str, Any]
Batch = list[Body]


class OpenAIAdapter:
    system = "openai"  # OpenTelemetry's gen_ai.system
    _rename_reasoning = False
    # Whether the server continues an unfinished assistant message (vLLM does).
    _continues = False
    _reasoning_opener: str | None = None
    reports_chunk_usage = False

    def __init__(self, config: OpenAIProviderConfig) -> None:
        headers = dict(config.headers)
        if config.api_key is not None and config.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        self._connect(config, config.base_url, headers)
        self._rename_reasoning = config.rename_reasoning
        self._continues = config.continuation
        self.reports_chunk_usage = config.continuation  # vLLM's continuous_usage_stats

    def _connect(
        self, config: ProviderConnection, base_url: str, headers: Mapping[str, str]
    ) -> None:
        self._base = base_url.rstrip("/")
        what = f"upstream {self._base}"
        self._client = ProviderClient(transport_settings(config, what, headers))

    def _url(self, path: str, model: str | None) -> str:
        """Where a call goes; OpenAI's API names the model in the body, not the URL."""
        return self._base + path

    def _decoder(self) -> OpenAIChunks:
        return OpenAIChunks(self._client.what, self._rename_reasoning, self._client.max_event_bytes)

    async def _post(
        self, path: str, body: Body, timeouts: Timeouts, deadline: float | None
    ) -> Body:
        url = self._url(path, body.get("model"))
        result = await self._client.post(url, body, timeouts, deadline)
        return rename_reasoning(result) if self._rename_reasoning else result

    def _stream(
        self, path: str, body: Body, timeouts: Timeouts, deadline: float | None
    ) -> AsyncIterator[Batch]:
        url = self._url(path, body.get("model"))
        return self._client.stream(url, lambda: body, timeouts, self._decoder, deadline)

    async def chat(self, body: Body, timeouts: Timeouts, deadline: float | None = None) -> Body:
        return await self._post("/chat/completions", body, timeouts, deadline)

    def chat_stream(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> AsyncIterator[Batch]:
        return self._stream("/chat/completions", body, timeouts, deadline)

    async def completions(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> Body:
        return await self._post("/completions", body, timeouts, deadline)

    def completions_stream(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> AsyncIterator[Batch]:
        return self._stream("/completions", body, timeouts, deadline)

    async def embeddings(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> Body:
        return await self._post("/embeddings", body, timeouts, deadline)

    def continuation(self, operation: str, body: Body, partial: Partial) -> Body | None:
        if not self._continues:
            return None
        return openai_continuation(operation, body, partial, self._reasoning_opener)

    async def list_models(self) -> list[str]:
        data = (await self._client.get(self._url("/models", None))).get("data", [])
        return [str(item.get("id")) for item in data if isinstance(item, dict)]

    async def health(self) -> str | None:
        return await self._client.check(self._url("/models", None))

    async def aclose(self) -> None:
        await self._client.aclose()


class OpenAIChunks(ChunkDecoder):
    """An OpenAI-compatible stream: one JSON chunk per event, then ``[DONE]``.

    A body that ends without ``[DONE]`` is an error, so a truncated upstream
    stream is never passed off as a complete one."""

    unfinished = "ended the stream without [DONE]"

    def __init__(
        self, what: str, rename_reasoning: bool, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        super().__init__(what, max_event_bytes)
        self.rename_reasoning = rename_reasoning

    def translate(self, event: bytes) -> list[Body]:
        if event == b"[DONE]":
            self.done = True
            return []
        chunk = self.parse(event)
        if "error" in chunk and "choices" not in chunk:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {}
            raise UpstreamError(str(error.get("message") or f"{self.what} failed mid-stream"))
        if self.rename_reasoning:
            rename_reasoning(chunk)
        return [chunk]


def rename_reasoning(result: Body) -> Body:
    """vLLM's reasoning parsers answer ``reasoning``; DeepSeek's API, and most
    clients, read ``reasoning_content``: give clients one name for both."""
    for choice in result.get("choices") or ():
        for key in ("message", "delta"):
            part = choice.get(key)
            if isinstance(part, dict) and "reasoning" in part:
                reasoning = part.pop("reasoning")
                if part.get("reasoning_content") is None:
                    part["reasoning_content"] = reasoning
    return result
