"""One streamed turn: backend chunks in, Responses events out to a sink.

The same relay serves SSE (``POST /v1/responses`` with ``stream: true``) and
WebSocket mode; the sink is the only difference. Each batch of chunks that
arrived together leaves as one send; the last batch leaves with the terminal
event. The turn is saved before ``response.completed`` is sent, so a client
that saw it can continue from it at once (on any replica). A backend failure
after the first event, or a save that fails, ends the stream with ``error``
and ``response.failed``: never a silently short answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from adapters.errors import GatewayError
from gateway.observability.logs import AccessRecord
from gateway.responses import output
from gateway.responses.service import ResponsesService, Turn
from gateway.routing.streams import BatchStream
from gateway.tokens import TokenCounter

Body = dict[str, Any]
Batch = list[Body]


class Sink(Protocol):
    async def send(self, events: list[Body]) -> None: ...

    async def end(self, events: list[Body]) -> None:
        """The last events of the turn."""
        ...


class ResponsesRelay:
    def __init__(
        self, turn: Turn, service: ResponsesService, record: AccessRecord, tokens: TokenCounter
    ) -> None:
        self.turn = turn
        self.service = service
        self.record = record
        self.tokens = tokens
        self.stream = turn.stream()
        self.usage: Body | None = None  # chat usage, for the grant
        record.completion = self.stream.texts  # the audit log reads the assembled text

    @property
    def texts(self) -> list[str]:
        return self.stream.texts

    async def run(
        self,
        sink: Sink,
        first: Batch,
        rest: BatchStream,
        ended_by_drain: Callable[[], GatewayError | None] = lambda: None,
    ) -> None:
        """``ended_by_drain``: on cancellation, the error to end the stream with
        when the gateway's drain time ran out (None: the client went away)."""
        stream = self.stream
        pending = stream.start()
        chunks, first_at, last_at = 0, 0.0, 0.0
        try:
            batch = first
            while batch:
                for chunk in batch:
                    pending += stream.feed(chunk)
                last_at = time.perf_counter()
                first_at = first_at or last_at
                chunks += len(batch)
                if pending and not rest.finished:
                    await sink.send(pending)
                    pending = []
                try:
                    batch = await rest.__anext__()
                except StopAsyncIteration:
                    break
        except GatewayError as exc:
            await self._fail(sink, pending, exc)
            return
        except asyncio.CancelledError:
            drained = ended_by_drain()
            current = asyncio.current_task()
            if drained is None or current is None:
                raise
            current.uncancel()
            await self._fail(sink, pending, drained)
            return
        finally:
            if chunks > 1:
                self.record.inter_token = (last_at - first_at) / (chunks - 1)
        pending += stream.close()
        self.usage = stream.chat_usage or self._estimate()
        self.turn.response = stream.complete(output.usage(self.usage))
        self.record.prompt_tokens = self.usage.get("prompt_tokens")
        self.record.completion_tokens = self.usage.get("completion_tokens")
        try:
            await self.service.save(self.turn)
        except GatewayError as exc:
            await self._fail(sink, pending, exc)
            return
        await sink.end([*pending, stream.terminal()])

    async def _fail(self, sink: Sink, pending: list[Body], exc: GatewayError) -> None:
        self.record.error_type = exc.type
        raised, response_error = output.failure(exc)
        await sink.end([*pending, *self.stream.fail(raised, response_error)])

    def _estimate(self) -> Body:
        """Usage counted here when the backend sent none."""
        prompt = self.tokens.count_request(self.turn.chat)
        completion = self.tokens.count("".join(self.stream.texts))
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
