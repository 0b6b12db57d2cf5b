"""``kind: openai``: any OpenAI-compatible API (OpenAI, DeepSeek, vLLM, Ollama, ...).

The request body is already OpenAI's, so this adapter only adds the
provider's credentials and moves bytes; DeepSeek's and vLLM's extras such as
``reasoning_content`` pass through untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from adapters.http import (
    JSON_HEADERS,
    client_timeout,
    iter_sse_json,
    make_session,
    parse_json_object,
    status_error,
    transport_errors,
)
from gateway.config import OpenAIProviderConfig, Timeouts
from gateway.errors import UpstreamTimeoutError

Body = dict[str, Any]


class OpenAIAdapter:
    def __init__(self, config: OpenAIProviderConfig) -> None:
        self._base = config.base_url.rstrip("/")
        headers = dict(config.headers)
        if config.api_key is not None and config.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        self._what = f"upstream {self._base}"
        self._session = make_session(headers, config.max_connections, self._what)
        # Timeouts are per call site, but the common case is the provider's own:
        # keep those aiohttp objects prebuilt instead of allocating per request.
        self._default = config.timeouts
        self._timeout = client_timeout(config.timeouts, streaming=False)
        self._stream_timeout = client_timeout(config.timeouts, streaming=True)

    def _timeouts(self, timeouts: Timeouts, streaming: bool) -> aiohttp.ClientTimeout:
        if timeouts is self._default:
            return self._stream_timeout if streaming else self._timeout
        return client_timeout(timeouts, streaming=streaming)

    async def _post(self, path: str, body: Body, timeouts: Timeouts) -> Body:
        async with (
            transport_errors(self._what),
            self._session.post(
                self._base + path,
                data=orjson.dumps(body),
                headers=JSON_HEADERS,
                timeout=self._timeouts(timeouts, streaming=False),
            ) as response,
        ):
            raw = await response.read()
            if response.status >= 400:
                raise status_error(response.status, raw, response.headers)
        return parse_json_object(raw, self._what)

    async def _stream(self, path: str, body: Body, timeouts: Timeouts) -> AsyncIterator[Body]:
        loop = asyncio.get_running_loop()
        deadline = None if timeouts.total is None else loop.time() + timeouts.total
        async with transport_errors(self._what):
            # Nothing is yielded inside this block: the limit covers connect,
            # headers and the first chunk, all awaited in the caller's task.
            async with asyncio.timeout(timeouts.first_token):
                response = await self._session.post(
                    self._base + path,
                    data=orjson.dumps(body),
                    headers=JSON_HEADERS,
                    timeout=self._timeouts(timeouts, streaming=True),
                )
                try:
                    if response.status >= 400:
                        raise status_error(response.status, await response.read(), response.headers)
                    chunks = iter_sse_json(response, self._what)
                    first = await anext(chunks, None)
                except BaseException:
                    response.close()
                    raise
            finished = False
            try:
                if first is not None:
                    yield first
                    async for chunk in chunks:
                        if deadline is not None and loop.time() > deadline:
                            raise UpstreamTimeoutError(
                                f"{self._what} exceeded its total time limit"
                            )
                        yield chunk
                finished = True
            finally:
                # A stream left unfinished (client gone, error) must not go back
                # to the pool half-read: closing it also tells the upstream to stop.
                if finished:
                    response.release()
                else:
                    response.close()

    async def chat(self, body: Body, timeouts: Timeouts) -> Body:
        return await self._post("/chat/completions", body, timeouts)

    def chat_stream(self, body: Body, timeouts: Timeouts) -> AsyncIterator[Body]:
        return self._stream("/chat/completions", body, timeouts)

    async def completions(self, body: Body, timeouts: Timeouts) -> Body:
        return await self._post("/completions", body, timeouts)

    def completions_stream(self, body: Body, timeouts: Timeouts) -> AsyncIterator[Body]:
        return self._stream("/completions", body, timeouts)

    async def embeddings(self, body: Body, timeouts: Timeouts) -> Body:
        return await self._post("/embeddings", body, timeouts)

    async def list_models(self) -> list[str]:
        url = self._base + "/models"
        async with (
            transport_errors(self._what),
            self._session.get(url, timeout=self._timeout) as response,
        ):
            raw = await response.read()
            if response.status >= 400:
                raise status_error(response.status, raw, response.headers)
        data = parse_json_object(raw, self._what).get("data", [])
        return [str(item.get("id")) for item in data if isinstance(item, dict)]

    async def health(self) -> bool:
        try:
            async with self._session.get(
                self._base + "/models", timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                return response.status < 500
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def aclose(self) -> None:
        await self._session.close()
