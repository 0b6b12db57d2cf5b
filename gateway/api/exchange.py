"""One request's guardrails and cache, between a route and the router.

    exchange = await Exchange.open(request, operation, model, body)  # input guardrails, lookup
    if exchange.hit: answer from exchange.cached_result() / exchange.replay()
    else: call the router; exchange.finish_result(result) / exchange.stream_filters()
          (+ exchange.finish_stream(relay) once a stream has ended)

Order on the way back: output guardrails, then the cache records (so the
cache never holds what a guardrail masked or refused, and never the caller's
own values: it keeps placeholders), then the caller's values are restored.
A hit is restored with the current request's own placeholders.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from gateway.access.auth import PRINCIPAL
from gateway.api.relay import Batch, Body, ChunkFilter, StreamRelay
from gateway.api.state import RECORD, STATE
from gateway.cache.service import Lookup, ResponseCache
from gateway.guardrails.service import Checked, ModelGuard
from gateway.observability.logs import AccessRecord
from gateway.routing.streams import BatchStream


class Recorder:
    """A stream's chunks as they leave the output guardrails, for the cache."""

    __slots__ = ("batches",)

    def __init__(self) -> None:
        self.batches: list[bytes] = []

    def batch(self, batch: Batch) -> Batch:
        self.batches.append(orjson.dumps(batch))
        return batch

    def close(self) -> Batch:
        return []

    def payload(self) -> bytes:
        return b"[" + b",".join(self.batches) + b"]"


class Replay:
    """A cached stream's batches, as the relay reads an upstream stream."""

    __slots__ = ("_batches", "_left")

    def __init__(self, batches: list[Batch]) -> None:
        self._batches: Iterator[Batch] = iter(batches)
        self._left = len(batches)

    @property
    def finished(self) -> bool:
        return self._left == 0

    def __aiter__(self) -> Replay:
        return self

    async def __anext__(self) -> Batch:
        if not self._left:
            raise StopAsyncIteration
        self._left -= 1
        return next(self._batches)

    async def aclose(self) -> None:
        self._left = 0


class Guarded:
    """A stream with chunk filters applied to each batch (routes that relay
    chunks themselves, as the Responses API does); what the filters still
    hold at the end comes as one more batch."""

    __slots__ = ("_done", "_filters", "_rest")

    def __init__(self, rest: BatchStream, filters: list[ChunkFilter]) -> None:
        self._rest = rest
        self._filters = filters
        self._done = False

    @property
    def finished(self) -> bool:
        return self._done

    def __aiter__(self) -> Guarded:
        return self

    def apply(self, batch: Batch) -> Batch:
        for step in self._filters:
            batch = step.batch(batch)
        return batch

    async def __anext__(self) -> Batch:
        if self._done:
            raise StopAsyncIteration
        try:
            return self.apply(await self._rest.__anext__())
        except StopAsyncIteration:
            self._done = True
            held: Batch = []
            for position, step in enumerate(self._filters):
                tail = step.close()
                for later in self._filters[position + 1 :]:
                    tail = later.batch(tail) if tail else tail
                held += tail
            if held:
                return held
            raise

    async def aclose(self) -> None:
        await self._rest.aclose()


@dataclass(slots=True, eq=False)
class Exchange:
    guard: ModelGuard | None
    checked: Checked | None
    cache: ResponseCache | None
    lookup: Lookup | None
    recorder: Recorder | None = None

    @classmethod
    async def open(
        cls, request: web.Request, operation: str, model: str, body: dict[str, Any]
    ) -> Exchange:
        """Run the input guardrails (masking ``body`` in place), then look the
        masked request up in the cache."""
        guard, checked = await _check_input(request, model, body)
        cache = request.app[STATE].cache
        lookup = None
        if cache is not None and cache.mode(model):
            principal = request[PRINCIPAL]
            lookup = await cache.lookup(model, operation, body, principal.name, request.headers)
            if lookup is not None:
                record = request[RECORD]
                record.cache = lookup.status
                record.cache_semantic = lookup.semantic
        return cls(guard, checked, cache, lookup)

    @property
    def hit(self) -> bool:
        return self.lookup is not None and self.lookup.payload is not None

    def headers(self) -> dict[str, str]:
        return {} if self.lookup is None else {"X-Gateway-Cache": self.lookup.status}

    @classmethod
    async def guard_only(
        cls,
        request: web.Request,
        model: str,
        body: dict[str, Any],
        record: AccessRecord | None = None,
    ) -> Exchange:
        """Input guardrails alone, on a chat completion body another endpoint
        built (the Responses API): masked in place, or refused. ``record``:
        the access record the findings go to, when not the request's (a
        WebSocket turn)."""
        guard, checked = await _check_input(request, model, body, record)
        return cls(guard, checked, None, None)

    def guarded(self, first: Batch, rest: BatchStream) -> tuple[Batch, BatchStream]:
        """A stream with the output guardrails and restoring applied."""
        filters = self.stream_filters()
        if not filters:
            return first, rest
        stream = Guarded(rest, filters)
        return stream.apply(first), stream

    # ---- whole answers -------------------------------------------------------

    def cached_result(self) -> Body:
        assert self.lookup is not None and self.lookup.payload is not None
        result: Body = orjson.loads(self.lookup.payload)
        if self.guard is not None and self.checked is not None:
            self.guard.restore_result(result, self.checked)
        return result

    async def finish_result(self, result: Body) -> Body:
        """A fresh answer: output guardrails, kept in the cache, values restored."""
        guard, checked = self.guard, self.checked
        if self.cache is None or self.lookup is None:
            if guard is not None and checked is not None:
                guard.check_and_restore(result, checked)
            return result
        if guard is not None and checked is not None:
            guard.check_result(result, checked)
        await self.cache.store_answer(self.lookup, orjson.dumps(result))
        if guard is not None and checked is not None:
            guard.restore_result(result, checked)
        return result

    # ---- streams -------------------------------------------------------------

    def stream_filters(self) -> list[ChunkFilter]:
        """Output guardrails, the cache's recorder, then restoring, as needed."""
        filters: list[ChunkFilter | None] = []
        guard, checked = self.guard, self.checked
        if guard is not None and checked is not None:
            filters.append(guard.output_filter(checked))
        if self.lookup is not None and self.lookup.storable:
            self.recorder = Recorder()
            filters.append(self.recorder)
        if guard is not None and checked is not None:
            filters.append(guard.restore_filter(checked))
        return [f for f in filters if f is not None]

    def replay(self) -> tuple[Batch, Replay, list[ChunkFilter]]:
        """A cached stream: its first batch, the rest, and the restoring filter."""
        assert self.lookup is not None and self.lookup.payload is not None
        batches: list[Batch] = orjson.loads(self.lookup.payload)
        restoring = None
        if self.guard is not None and self.checked is not None:
            restoring = self.guard.restore_filter(self.checked)
        first = batches[0] if batches else []
        return first, Replay(batches[1:]), [] if restoring is None else [restoring]

    async def finish_stream(self, relay: StreamRelay) -> None:
        """Keep a stream that ended well."""
        if self.recorder is None or relay.failed or self.cache is None or self.lookup is None:
            return
        await self.cache.store_answer(self.lookup, self.recorder.payload())


async def _check_input(
    request: web.Request, model: str, body: dict[str, Any], record: AccessRecord | None = None
) -> tuple[ModelGuard | None, Checked | None]:
    """The model's input guardrails on ``body`` (masked in place, or refused),
    their findings recorded for the access log; (None, None) without any."""
    guardrails = request.app[STATE].guardrails
    guard = (
        None if guardrails is None else guardrails.for_request(model, request[PRINCIPAL].guardrails)
    )
    if guard is None:
        return None, None
    checked = Checked()
    record = record if record is not None else request[RECORD]
    record.guardrails = checked.findings.found
    record.restored = checked.vault.restorable
    await guard.check_input(body, checked)
    return guard, checked
