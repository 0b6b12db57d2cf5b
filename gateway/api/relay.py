"""Turning backend results into what the client receives: the public model
name, usage filled in when the backend gave none, and SSE framed exactly as
OpenAI frames it (``data: {json}\\n\\n`` per chunk, then ``data: [DONE]\\n\\n``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from aiohttp import web

from adapters.errors import GatewayError
from gateway.api.drain import Drain
from gateway.observability.logs import AccessRecord
from gateway.routing.streams import BatchStream
from gateway.tokens import TokenCounter

Body = dict[str, Any]
Batch = list[Body]
SSE_DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    # Tell reverse proxies (nginx) not to buffer the stream.
    "X-Accel-Buffering": "no",
}


class ChunkFilter(Protocol):
    """A step between the upstream's chunks and the client (guardrails, cache
    recording): rewrites each batch (may raise GatewayError to end the stream),
    and at the end returns the chunks it still held."""

    def batch(self, batch: Batch) -> Batch: ...

    def close(self) -> Batch: ...


def sse(payload: Body) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _choice_text(choice: Body) -> str:
    if "text" in choice:  # completions
        return str(choice.get("text") or "")
    message = choice.get("message") or choice.get("delta") or {}
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    # Most deltas carry content alone: look for the rarer parts only when present.
    if len(message) > 1:
        for key in ("reasoning_content", "refusal"):
            part = message.get(key)
            if part:
                text += str(part)
    return text


def finish_result(result: Body, public_name: str, body: Body, tokens: TokenCounter) -> Body:
    """Non-streaming: the client's model name, and usage always present."""
    result["model"] = public_name
    usage = result.get("usage")
    if not isinstance(usage, dict) and "choices" in result:
        prompt = tokens.count_request(body)
        completion = sum(tokens.count(_choice_text(c)) for c in result["choices"])
        result["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    return result


class StreamRelay:
    """Forwards one upstream stream to the client as it arrives, unbuffered."""

    def __init__(
        self,
        public_name: str,
        body: Body,
        include_usage: bool,
        record: AccessRecord,
        tokens: TokenCounter,
        drain: Drain,
        filters: Sequence[ChunkFilter] = (),
    ) -> None:
        self.public_name = public_name
        self.drain = drain
        self.filters = filters
        self.failed = False
        self.body = body
        self.include_usage = include_usage
        self.record = record
        self.tokens = tokens
        self.usage: Body | None = None
        self.texts: list[str] = []
        self.last_chunk: Body | None = None
        record.completion = self.texts  # the audit log reads the assembled text
        # Arrival times of the first and last chunk with choices, for the
        # inter-token latency: one clock read per chunk, no list kept.
        self.chunks = 0
        self.first_at = 0.0
        self.last_at = 0.0

    def encode(self, batch: Batch) -> bytes:
        """The bytes to send for a batch of upstream chunks (maybe none)."""
        for step in self.filters:
            batch = step.batch(batch)
        events = []
        for chunk in batch:
            chunk["model"] = self.public_name
            usage = chunk.get("usage")
            if usage:
                self.usage = usage
            choices = chunk.get("choices")
            if choices:
                self.last_at = time.perf_counter()
                if not self.chunks:
                    self.first_at = self.last_at
                self.chunks += 1
                self.last_chunk = chunk
                for choice in choices:
                    self.texts.append(_choice_text(choice))
            if not self.include_usage and "usage" in chunk:
                del chunk["usage"]
                if not choices:
                    continue  # the upstream's usage-only chunk the client did not ask for
            events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
        return events[0] if len(events) == 1 else b"".join(events)

    def closing_usage_chunk(self) -> bytes | None:
        """OpenAI's final usage chunk, computed when the upstream sent none."""
        if self.usage is None:
            prompt = self.tokens.count_request(self.body)
            completion = self.tokens.count("".join(self.texts))
            self.usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            if self.include_usage:
                template = self.last_chunk or {}
                return sse(
                    {
                        "id": template.get("id", ""),
                        "object": template.get("object", "chat.completion.chunk"),
                        "created": template.get("created", 0),
                        "model": self.public_name,
                        "choices": [],
                        "usage": self.usage,
                    }
                )
        return None

    async def run(self, response: web.StreamResponse, first: Batch, rest: BatchStream) -> None:
        """Send each batch in one write (a burst that arrived together leaves
        together); the last batch leaves with the end of the response."""
        last = b""
        try:
            batch = first
            while batch:
                data = self.encode(batch)
                if rest.finished:
                    last = data
                elif data:
                    await response.write(data)
                try:
                    batch = await rest.__anext__()
                except StopAsyncIteration:
                    break
            if self.filters:
                last += self._encode_held()
        except GatewayError as exc:
            await self._end_with(response, rest, exc)
            return
        except asyncio.CancelledError:
            if not self.drain.ending:
                raise  # the client went away
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            await self._end_with(response, rest, self.drain.error())
            return
        closing = self.closing_usage_chunk()
        self.record.prompt_tokens = self.usage.get("prompt_tokens") if self.usage else None
        self.record.completion_tokens = self.usage.get("completion_tokens") if self.usage else None
        self._record_end(rest)
        await response.write_eof(b"".join((last, closing or b"", SSE_DONE)))

    async def _end_with(
        self, response: web.StreamResponse, rest: BatchStream, error: GatewayError
    ) -> None:
        """The status line is gone: the failure becomes the last event, so the
        client sees an error, never a silently short answer."""
        self.failed = True
        self.record.error_type = error.type
        self._record_end(rest)
        await response.write_eof(sse(error.to_dict()) + SSE_DONE)

    def _encode_held(self) -> bytes:
        """What the filters still held at the end, through the filters after them."""
        events = []
        for position, step in enumerate(self.filters):
            held = step.close()
            for later in self.filters[position + 1 :]:
                held = later.batch(held) if held else held
            if held:
                events.append(self._encode_unfiltered(held))
        return b"".join(events)

    def _encode_unfiltered(self, batch: Batch) -> bytes:
        filters, self.filters = self.filters, ()
        try:
            return self.encode(batch)
        finally:
            self.filters = filters

    def _record_end(self, rest: BatchStream) -> None:
        if self.chunks > 1:
            self.record.inter_token = (self.last_at - self.first_at) / (self.chunks - 1)
        failovers = getattr(rest, "failovers", None)
        if failovers:  # the access log names every switch of a failed-over stream
            self.record.failover = " -> ".join(
                [failovers[0]["from"], *(f["to"] for f in failovers)]
            )
