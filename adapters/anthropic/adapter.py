"""``kind: anthropic``: Anthropic's Messages API behind OpenAI's chat endpoint.

This module only moves bytes; the translation is ``anthropic_format`` and
``anthropic_stream``. Anthropic has no text-completion or embeddings API, so
those endpoints answer 400 for this kind.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from adapters.anthropic.format import (
    AnthropicOptions,
    error_from_response,
    from_anthropic_message,
    to_anthropic_request,
)
from adapters.anthropic.stream import AnthropicStream
from adapters.base import Partial
from adapters.client import Batch, FailedStream, ProviderClient, transport_settings
from adapters.config import AnthropicProviderConfig, Timeouts
from adapters.continuation import prefill_continuation
from adapters.translation import Body, unsupported_endpoint
from adapters.transport.sse import ChunkDecoder

PROVIDER = "anthropic"


class AnthropicAdapter:
    system = "anthropic"  # OpenTelemetry's gen_ai.system
    reports_chunk_usage = False

    def __init__(self, config: AnthropicProviderConfig) -> None:
        self._base = config.base_url.rstrip("/")
        headers = {"anthropic-version": config.anthropic_version, **config.headers}
        if config.api_key is not None and config.api_key.get_secret_value():
            headers["x-api-key"] = config.api_key.get_secret_value()
        self._client = ProviderClient(
            transport_settings(config, f"anthropic upstream {self._base}", headers),
            error_from_response,
        )
        self._options = AnthropicOptions(
            config.default_max_tokens, dict(config.thinking_budgets), config.drop_unsupported
        )

    async def chat(self, body: Body, timeouts: Timeouts, deadline: float | None = None) -> Body:
        request = to_anthropic_request({**body, "stream": False}, self._options)
        message = await self._client.post(self._base + "/messages", request, timeouts, deadline)
        return from_anthropic_message(message, int(time.time()))

    def chat_stream(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> AsyncIterator[Batch]:
        def make_request() -> Body:
            return to_anthropic_request({**body, "stream": True}, self._options)

        def decoder() -> AnthropicChunks:
            return AnthropicChunks(self._client.what, self._client.max_event_bytes)

        return self._client.stream(
            self._base + "/messages", make_request, timeouts, decoder, deadline
        )

    async def completions(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> Body:
        raise unsupported_endpoint(PROVIDER, "/v1/completions")

    def completions_stream(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> AsyncIterator[Batch]:
        return FailedStream(unsupported_endpoint(PROVIDER, "/v1/completions"))

    async def embeddings(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> Body:
        raise unsupported_endpoint(PROVIDER, "/v1/embeddings")

    def continuation(self, operation: str, body: Body, partial: Partial) -> Body | None:
        return prefill_continuation(operation, body, partial)

    async def list_models(self) -> list[str]:
        data = (await self._client.get(self._base + "/models")).get("data", [])
        return [str(item.get("id")) for item in data if isinstance(item, dict)]

    async def health(self) -> str | None:
        return await self._client.check(self._base + "/models")

    async def aclose(self) -> None:
        await self._client.aclose()


class AnthropicChunks(ChunkDecoder):
    """Anthropic's SSE body, as it arrives, becomes OpenAI chunks."""

    unfinished = "ended the stream before message_stop"

    def __init__(self, what: str, max_event_bytes: int) -> None:
        super().__init__(what, max_event_bytes)
        self._stream = AnthropicStream(int(time.time()))

    def translate(self, event: bytes) -> list[Body]:
        chunks = self._stream.feed(self.parse(event))
        self.done = self._stream.done
        return chunks
