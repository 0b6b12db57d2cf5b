"""``kind: gemini``: Google's Gemini API behind OpenAI's chat and embeddings endpoints.

This module only moves bytes; the translation is ``gemini_format``,
``gemini_stream`` and ``gemini_embed``. The model is named in the URL
(``models/<name>:generateContent``), the key in the ``x-goog-api-key`` header
(never in the URL, where logs would keep it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

from adapters.base import Partial
from adapters.client import Batch, FailedStream, ProviderClient, transport_settings
from adapters.config import GeminiProviderConfig, Timeouts
from adapters.gemini.embeddings import from_embed_response, to_embed_request
from adapters.gemini.format import (
    GeminiOptions,
    error_from_response,
    from_gemini_response,
    model_path,
    to_gemini_request,
)
from adapters.gemini.stream import GeminiStream
from adapters.translation import Body, unsupported_endpoint
from adapters.transport.sse import ChunkDecoder

PROVIDER = "gemini"


def _call_id_prefix() -> str:
    return f"call_{uuid.uuid4().hex[:16]}_"


class GeminiAdapter:
    system = "gcp.gemini"  # OpenTelemetry's gen_ai.system
    reports_chunk_usage = False

    def __init__(self, config: GeminiProviderConfig) -> None:
        self._base = config.base_url.rstrip("/")
        headers = dict(config.headers)
        if config.api_key is not None and config.api_key.get_secret_value():
            headers["x-goog-api-key"] = config.api_key.get_secret_value()
        self._client = ProviderClient(
            transport_settings(config, f"gemini upstream {self._base}", headers),
            error_from_response,
        )
        self._options = GeminiOptions(dict(config.thinking_budgets), config.drop_unsupported)

    def _url(self, model: str, method: str) -> str:
        return f"{self._base}/{model_path(model)}:{method}"

    async def chat(self, body: Body, timeouts: Timeouts, deadline: float | None = None) -> Body:
        request = to_gemini_request(body, self._options)
        url = self._url(body["model"], "generateContent")
        result = await self._client.post(url, request, timeouts, deadline)
        return from_gemini_response(result, int(time.time()), _call_id_prefix())

    def chat_stream(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> AsyncIterator[Batch]:
        url = self._url(body["model"], "streamGenerateContent") + "?alt=sse"

        def make_request() -> Body:
            return to_gemini_request(body, self._options)

        def decoder() -> GeminiChunks:
            return GeminiChunks(self._client.what, self._client.max_event_bytes)

        return self._client.stream(url, make_request, timeouts, decoder, deadline)

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
        method, request = to_embed_request(body, self._options)
        result = await self._client.post(
            self._url(body["model"], method), request, timeouts, deadline
        )
        return from_embed_response(result, str(body["model"]), body.get("encoding_format"))

    def continuation(self, operation: str, body: Body, partial: Partial) -> Body | None:
        return None  # Gemini has no way to continue a model turn it did not write

    async def list_models(self) -> list[str]:
        listing = (await self._client.get(self._base + "/models")).get("models", [])
        return [
            str(item.get("name", "")).removeprefix("models/")
            for item in listing
            if isinstance(item, dict)
        ]

    async def health(self) -> str | None:
        return await self._client.check(self._base + "/models")

    async def aclose(self) -> None:
        await self._client.aclose()


class GeminiChunks(ChunkDecoder):
    """Gemini's SSE body, as it arrives, becomes OpenAI chunks. Gemini's
    stream has no end event: the body's end is the stream's."""

    def __init__(self, what: str, max_event_bytes: int) -> None:
        super().__init__(what, max_event_bytes)
        self._stream = GeminiStream(int(time.time()), _call_id_prefix())

    def translate(self, event: bytes) -> list[Body]:
        return self._stream.feed(self.parse(event))

    def end(self) -> list[Body]:
        return self._stream.finish()
