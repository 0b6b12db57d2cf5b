"""Guardrails on streamed OpenAI chunks (chat and text completions).

A ``ChoiceTextFilter`` runs one text stream per choice and field (content,
reasoning_content, a completion's text, or a tool call's arguments, keyed by
the call's index): each chunk's text is replaced by what the stream
releases, and when a choice finishes (its ``finish_reason`` chunk) whatever
it still held is added to that chunk. ``close`` returns a chunk for text
still held when the upstream ended without a finish chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

Chunk = dict[str, Any]
Batch = list[Chunk]
DELTA_FIELDS: Final = ("content", "reasoning_content")
# What a stream holds: a field's name, or the index of a tool call (its arguments).
Field = str | int


class TextStream(Protocol):
    def feed(self, piece: str) -> str: ...

    def flush(self) -> str: ...


class Chain:
    """Text streams one after the other (each feeds the next)."""

    __slots__ = ("_streams",)

    def __init__(self, streams: Sequence[TextStream]) -> None:
        self._streams = streams

    def feed(self, piece: str) -> str:
        for stream in self._streams:
            piece = stream.feed(piece)
        return piece

    def flush(self) -> str:
        out = ""
        for stream in self._streams:
            out = stream.feed(out) + stream.flush() if out else stream.flush()
        return out


class ChoiceTextFilter:
    """Rewrites the text of streamed chunks through a text stream per choice."""

    __slots__ = ("_make", "_streams", "_template")

    def __init__(self, make: Callable[[], TextStream]) -> None:
        self._make = make
        self._streams: dict[tuple[int, Field], TextStream] = {}
        self._template: Chunk | None = None

    def _stream(self, key: tuple[int, Field]) -> TextStream:
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = self._make()
        return stream

    def batch(self, batch: Batch) -> Batch:
        for chunk in batch:
            choices = chunk.get("choices")
            if not choices:
                continue
            self._template = chunk
            for choice in choices:
                self._choice(choice)
        return batch

    def _choice(self, choice: Chunk) -> None:
        index = choice.get("index", 0)
        text = choice.get("text")
        delta = choice.get("delta")
        if isinstance(text, str):
            choice["text"] = self._stream((index, "text")).feed(text)
        elif isinstance(delta, dict):
            for field in DELTA_FIELDS:
                piece = delta.get(field)
                if isinstance(piece, str) and piece:
                    delta[field] = self._stream((index, field)).feed(piece)
            calls = delta.get("tool_calls")
            if calls:
                self._arguments(index, calls)
        if choice.get("finish_reason") is not None:
            for (owner, held), stream in list(self._streams.items()):
                if owner != index:
                    continue
                rest = stream.flush()
                del self._streams[(owner, held)]
                if rest:
                    _append(choice, held, rest)

    def _arguments(self, index: int, calls: list[Any]) -> None:
        for call in calls:
            found = _function(call)
            if found is None:
                continue
            call_index, function = found
            piece = function.get("arguments")
            if isinstance(piece, str) and piece:
                function["arguments"] = self._stream((index, call_index)).feed(piece)

    def close(self) -> Batch:
        """A chunk with what is still held, when no finish chunk released it."""
        choices = []
        for (index, field), stream in self._streams.items():
            rest = stream.flush()
            if rest:
                choice: Chunk = {"index": index, "finish_reason": None, "logprobs": None}
                _append(choice, field, rest)
                choices.append(choice)
        self._streams.clear()
        if not choices:
            return []
        template = self._template or {}
        keys = ("id", "object", "created", "model")
        chunk: Chunk = {key: template[key] for key in keys if key in template}
        chunk["choices"] = choices
        return [chunk]


def _append(choice: Chunk, field: Field, text: str) -> None:
    if field == "text":
        choice["text"] = (choice.get("text") or "") + text
        return
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        delta = choice["delta"] = {}
    if isinstance(field, str):
        delta[field] = (delta.get(field) or "") + text
        return
    calls = delta.get("tool_calls")
    if not isinstance(calls, list):
        calls = delta["tool_calls"] = []
    for call in calls:
        found = _function(call)
        if found is not None and found[0] == field:
            found[1]["arguments"] = (found[1].get("arguments") or "") + text
            return
    calls.append({"index": field, "function": {"arguments": text}})


def _function(call: Any) -> tuple[int, Chunk] | None:
    """A streamed tool call's index (0 when it has none) and its ``function``;
    None for anything else an upstream may send there."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        return None
    index = call.get("index")
    return (index if isinstance(index, int) else 0), function
