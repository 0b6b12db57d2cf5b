"""Gemini's streamGenerateContent (SSE) chunks -> OpenAI chat.completion.chunk dicts.

Each Gemini chunk is a partial GenerateContentResponse: text and thought
parts arrive as deltas, a function call arrives whole (its arguments in one
delta), ``finishReason`` marks a candidate's end, and ``usageMetadata`` on the
last chunk holds the totals. The stream has no end marker of its own, so the
body's end is one (``finish``), and a body that ends before any candidate
finished is a truncated stream.
"""

from __future__ import annotations

from adapters.errors import UpstreamError
from adapters.gemini.format import (
    call_ids,
    error_from_object,
    finish_reason,
    openai_usage,
    split_parts,
)
from adapters.translation import Body, chat_chunk, usage_chunk


class GeminiStream:
    """Gemini stream chunks, fed in order, become OpenAI chunks."""

    def __init__(self, created: int, id_prefix: str) -> None:
        self.created = created
        self.id = id_prefix.rstrip("_")
        self.model = ""
        self._new_call_id = call_ids(id_prefix)
        self._usage: Body = {}
        self._calls: dict[int, int] = {}  # candidate index -> tool calls sent
        self._role_sent: set[int] = set()
        self._finished: set[int] = set()

    def feed(self, chunk: Body) -> list[Body]:
        error = chunk.get("error")
        if isinstance(error, dict):
            raise error_from_object(error, int(error.get("code") or 500), {})
        self.id = str(chunk.get("responseId") or self.id)
        self.model = str(chunk.get("modelVersion") or self.model)
        if chunk.get("usageMetadata"):
            self._usage = chunk["usageMetadata"]
        candidates = chunk.get("candidates") or []
        if not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
            self._finished.add(0)
            return [self._chunk(0, {}, "content_filter")]
        out: list[Body] = []
        for position, candidate in enumerate(candidates):
            out.extend(self._candidate(int(candidate.get("index", position)), candidate))
        return out

    def finish(self) -> list[Body]:
        """At the end of the body: the usage chunk, or an error if nothing finished."""
        if not self._finished:
            raise UpstreamError("Gemini API ended the stream before any candidate finished")
        return [usage_chunk(self.id, self.created, self.model, openai_usage(self._usage))]

    def _candidate(self, index: int, candidate: Body) -> list[Body]:
        parts = (candidate.get("content") or {}).get("parts") or []
        texts, thoughts, calls = split_parts(parts, self._new_call_id)
        delta: Body = {}
        if "".join(thoughts):
            delta["reasoning_content"] = "".join(thoughts)
        if "".join(texts):
            delta["content"] = "".join(texts)
        if calls:
            sent = self._calls.get(index, 0)
            delta["tool_calls"] = [{"index": sent + i, **call} for i, call in enumerate(calls)]
            self._calls[index] = sent + len(calls)
        out = [self._chunk(index, delta)] if delta else []
        reason = candidate.get("finishReason")
        if reason:
            self._finished.add(index)
            called = self._calls.get(index, 0) > 0
            out.append(self._chunk(index, {}, finish_reason(reason, called)))
        return out

    def _chunk(self, index: int, delta: Body, finish: str | None = None) -> Body:
        if index not in self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent.add(index)
        return chat_chunk(self.id, self.created, self.model, index, delta, finish)
