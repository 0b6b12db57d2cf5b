"""Mid-stream failover: a stream whose backend breaks after it started
finishes on another backend, and the client sees one uninterrupted answer.

``ResumableStream`` passes a target's stream through and keeps what the
client has been sent of its one choice (content and reasoning apart). When
the stream breaks (dropped connection, killed engine, idle timeout, an error
event), it asks the next usable target that can continue an answer
(``Adapter.continuation``: local vLLM engines, ``continuation: true``
providers, Anthropic by prefill) to do so, and splices the continuation in:

- the same ``id`` and ``created``, choice 0, no second ``role``;
- reasoning continued as reasoning; content continued as content (a
  continuation's reasoning after the break is content: a reasoning parser
  that never saw the model's end-of-reasoning marker calls it reasoning);
- ``usage``: the client's prompt, and the tokens each backend generated,
  together (the continuation was prompted with what the first generated,
  which is not prompt here);
- ``gateway_failover`` (not in OpenAI's spec) on the final chunks: from and
  to which target, after how many tokens, why, and (once the continuation
  reported it) how many tokens the continuation was prompted with.

Tokens are counted exactly where the backend counts them on every chunk
(vLLM's ``stream_options.continuous_usage_stats``, asked of targets whose
adapter ``reports_chunk_usage``; the client sees that usage only if it asked
for it): vLLM packs several tokens into one chunk when its client reads
behind the engine. Elsewhere each chunk with text counts as one token.

A break after the first chunk but before any text (vLLM opens a stream
with a role-only chunk) is answered afresh by the next usable target, any
kind, spliced the same way. What cannot be continued ends as before, with
the error: several choices, logprobs, a tool call under way, or no target
able to continue. A continuation that breaks fails over again while targets
remain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.base import Batch, Body, Partial
from adapters.errors import GatewayError, UpstreamError
from gateway.routing.streams import TargetStream
from gateway.routing.target import Target

# Opens a continuation on a target not yet used: its first batch and stream,
# or None when no target can continue (given what was sent, and who failed).
OpenContinuation = Callable[
    [Partial, list[Target]], Awaitable[tuple[Batch, TargetStream, Target] | None]
]


def resumable(body: Body) -> bool:
    """Whether a stream of this request could be continued elsewhere at all."""
    n = body.get("n")
    return (n is None or n == 1) and not body.get("logprobs") and not body.get("best_of")


def asks_chunk_usage(body: Body) -> bool:
    """Whether the client itself asked for the usage so far on every chunk."""
    return bool((body.get("stream_options") or {}).get("continuous_usage_stats"))


def counted(target: Target, body: Body) -> Body:
    """``body`` asking ``target`` for the usage so far on every chunk, where its
    adapter says the backend can (vLLM's continuous_usage_stats)."""
    if not target.adapter.reports_chunk_usage:
        return body
    options = {**(body.get("stream_options") or {}), "continuous_usage_stats": True}
    return {**body, "stream_options": options}


class ResumableStream:
    """The rest of a stream (``BatchStream``) that fails over when it breaks."""

    __slots__ = (
        "_content",
        "_current",
        "_finished_choice",
        "_keep_chunk_usage",
        "_open",
        "_prompt_tokens",
        "_reasoning",
        "_relabel",
        "_strip_chunk_usage",
        "_template",
        "_tokens",
        "_tool_calls",
        "_used",
        "failovers",
    )

    def __init__(
        self,
        first: Batch,
        stream: TargetStream,
        target: Target,
        open_: OpenContinuation,
        keep_chunk_usage: bool = False,
    ) -> None:
        self._current = stream
        self._open = open_
        self._used = [target]
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._tokens = 0  # generated so far, by every target used
        self._prompt_tokens: int | None = None  # the first target's count of the prompt
        self._keep_chunk_usage = keep_chunk_usage  # the client asked for it
        self._strip_chunk_usage = self._stripping(target)
        self._tool_calls = False
        self._finished_choice = False
        self._template: dict[str, Any] = {}
        self._relabel = False  # continuation reasoning is content (the break came in content)
        self.failovers: list[dict[str, Any]] = []
        self._track(first)

    def __aiter__(self) -> ResumableStream:
        return self

    @property
    def finished(self) -> bool:
        return self._current.finished

    async def __anext__(self) -> Batch:
        try:
            batch = await self._current.__anext__()
        except UpstreamError as exc:
            if self._finished_choice:
                raise StopAsyncIteration from exc  # only the usage or [DONE] was lost
            batch = await self._fail_over(exc)
        if self.failovers:
            self._splice(batch)
        self._track(batch)
        return batch

    async def aclose(self) -> None:
        await self._current.aclose()

    # ---- what the client has been sent ---------------------------------------

    def _track(self, batch: Batch) -> None:
        for chunk in batch:
            choices = chunk.get("choices")
            if not choices:
                continue
            if not self._template:
                self._template = {k: chunk[k] for k in ("id", "created") if k in chunk}
            choice = choices[0]
            delta = choice.get("delta")
            if delta is None:  # a text completion's chunk
                text, thought = choice.get("text"), None
            else:
                if delta.get("tool_calls"):
                    self._tool_calls = True
                text, thought = delta.get("content"), delta.get("reasoning_content")
            if text:
                self._content.append(text)
            if thought:
                self._reasoning.append(thought)
            usage = chunk.get("usage")
            if usage:  # the usage so far (joined by _splice after a failover)
                self._count(usage)
                if self._strip_chunk_usage:
                    del chunk["usage"]
            elif text or thought:
                self._tokens += 1
            if choice.get("finish_reason"):
                self._finished_choice = True

    def _stripping(self, target: Target) -> bool:
        """Whether chunks carry usage only because ``counted`` asked ``target``
        for it: a backend that sends usage with its last choice anyway keeps it."""
        return target.adapter.reports_chunk_usage and not self._keep_chunk_usage

    def _count(self, usage: Body) -> None:
        self._tokens = int(usage.get("completion_tokens") or 0)
        if self._prompt_tokens is None and not self.failovers:
            self._prompt_tokens = usage.get("prompt_tokens")

    def _partial(self) -> Partial:
        return Partial("".join(self._content), "".join(self._reasoning), self._tokens)

    # ---- the switch ----------------------------------------------------------

    async def _fail_over(self, error: GatewayError) -> Batch:
        if self._tool_calls:
            raise error
        partial = self._partial()
        opened = await self._open(partial, self._used)
        if opened is None:
            raise error
        first, stream, target = opened
        self.failovers.append(
            {
                "from": self._used[-1].name,
                "to": target.name,
                "after_tokens": partial.tokens,
                "reason": error.message,
            }
        )
        self._used.append(target)
        self._current = stream
        self._strip_chunk_usage = self._stripping(target)
        # Reasoning after a break in the content is content; a fresh answer's is its own.
        self._relabel = bool(partial.content)
        return first

    def _splice(self, batch: Batch) -> None:
        """A continuation's chunks as chunks of the first stream."""
        failover = self.failovers[-1]
        for chunk in batch:
            chunk.update(self._template)
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta")
                if delta is not None:
                    delta.pop("role", None)
                    if self._relabel and delta.get("reasoning_content"):
                        delta["content"] = (delta.get("content") or "") + delta.pop(
                            "reasoning_content"
                        )
                if choice.get("finish_reason"):
                    chunk["gateway_failover"] = failover
            usage = chunk.get("usage")
            if usage:
                self._join_usage(usage, failover)
                if not chunk.get("choices"):
                    chunk["gateway_failover"] = failover

    def _join_usage(self, usage: dict[str, Any], failover: dict[str, Any]) -> None:
        earlier = failover["after_tokens"]
        continuation_prompt = int(usage.get("prompt_tokens") or 0)
        failover["prompt_tokens"] = continuation_prompt
        prompt = (
            self._prompt_tokens
            if self._prompt_tokens is not None
            else max(0, continuation_prompt - earlier)
        )
        completion = int(usage.get("completion_tokens") or 0) + earlier
        usage.update(prompt_tokens=prompt, completion_tokens=completion)
        usage["total_tokens"] = prompt + completion
