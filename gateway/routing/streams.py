"""A stream as the router hands it on (``BatchStream``): the rest of one
target's stream (``TargetStream``), which frees the target's slot and records
the outcome when it ends, or a ``gateway.routing.failover.ResumableStream``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from adapters.base import Batch
from adapters.errors import GatewayError
from gateway.routing.target import Target


class BatchStream(Protocol):
    """Batches of OpenAI chunks; ``finished`` says, without waiting, that the
    batch just returned was the last."""

    @property
    def finished(self) -> bool: ...

    def __aiter__(self) -> BatchStream: ...

    async def __anext__(self) -> Batch: ...

    async def aclose(self) -> None: ...


class TargetStream:
    """The rest of a stream, in batches of chunks. Frees the target's slot and records the outcome
    when it ends, fails, or is closed early (the client went away)."""

    __slots__ = ("_chunks", "_open", "_target")

    def __init__(self, target: Target, chunks: AsyncIterator[Batch]) -> None:
        self._target = target
        self._chunks = chunks
        self._open = True

    def __aiter__(self) -> TargetStream:
        return self

    @property
    def finished(self) -> bool:
        """The last batch is in: the next ``anext`` ends the stream at once."""
        return bool(getattr(self._chunks, "finished", False))

    async def __anext__(self) -> Batch:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            self._end(None)
            raise
        except GatewayError as exc:
            self._end(exc)
            raise

    def _end(self, error: GatewayError | None) -> None:
        if self._open:
            self._open = False
            self._target.health.release()
            if error is None:
                self._target.health.record_success()
            else:
                self._target.health.record_error(error)

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._target.health.release()
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()
