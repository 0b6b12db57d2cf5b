"""The one small interface every backend kind implements.

An adapter speaks OpenAI's wire format on its gateway side: it takes an
OpenAI request body (a dict whose ``model`` is already the upstream name) and
returns OpenAI response dicts, or an async iterator of batches of OpenAI
stream chunks (a batch is what one read of the backend's socket completed,
so chunks that arrived together are sent on to the client in one write).
Whatever the backend speaks on the other side is the adapter's business.
Adapters raise ``adapters.errors`` exceptions, never return error values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.config import Timeouts

Body = dict[str, Any]
Batch = list[Body]


@dataclass(frozen=True, slots=True)
class Partial:
    """What a broken stream had sent the client: the text of its one choice
    (reasoning apart), so that another backend can continue the answer."""

    content: str
    reasoning: str
    tokens: int  # chunks with text: one per generated token for vLLM

    @property
    def in_reasoning(self) -> bool:
        """The stream broke while the model was still reasoning."""
        return bool(self.reasoning) and not self.content

    @property
    def empty(self) -> bool:
        """No text was sent yet (vLLM opens a stream with a role-only chunk):
        any backend can give the whole answer afresh."""
        return not self.content and not self.reasoning


class Adapter(Protocol):
    """``deadline``: when the router's attempt must be over (the event loop's
    clock), or None; a stream's deadline bounds it until its first chunk."""

    system: str  # what OpenTelemetry's GenAI conventions call it (gen_ai.system)
    # The backend reports the usage so far on every stream chunk when asked
    # (vLLM's stream_options.continuous_usage_stats): mid-stream failover then
    # knows exactly how many tokens a broken stream had generated.
    reports_chunk_usage: bool

    async def chat(self, body: Body, timeouts: Timeouts, deadline: float | None = None) -> Body: ...

    def chat_stream(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> AsyncIterator[Batch]:
        """Chunks as OpenAI sends them, never an empty batch; after ``[DONE]`` nothing more."""
        ...

    async def completions(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> Body: ...

    def completions_stream(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> AsyncIterator[Batch]: ...

    async def embeddings(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> Body: ...

    def continuation(self, operation: str, body: Body, partial: Partial) -> Body | None:
        """The request that makes this backend continue ``partial`` (``body``:
        the original request, with this backend's model), or None when it
        cannot continue an answer it did not start."""
        ...

    async def list_models(self) -> list[str]: ...

    async def health(self) -> str | None:
        """None when the backend answers; else why it is unusable ("credentials
        rejected (HTTP 401)", "... is unreachable"). Cheap: for /ready and the
        active health checks."""
        ...

    async def aclose(self) -> None: ...
