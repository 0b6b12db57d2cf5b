"""Text into overlapping chunks of tokens, as OpenAI's chunking strategies say.

``auto`` is OpenAI's default, 800 tokens with 400 of overlap, capped to half
of what the embedding model accepts (``window``: another tokenizer counts
more tokens in the same text); ``static`` takes
``max_chunk_size_tokens`` (100 to 4096) and ``chunk_overlap_tokens`` (at most
half of it). Tokens are the gateway's tiktoken encoding.

A chunk is always a piece of the original text, cut where a token begins and
never inside a character: chunk ``i`` starts where window ``i`` of the
encoding starts and ends where it ends, and window ``i + 1`` starts
``max - overlap`` tokens after window ``i`` (the last one ends the text). So
the chunks, their overlaps taken out, are the text again.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import tiktoken

AUTO_MAX_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
MIN_CHUNK_TOKENS = 100
MAX_CHUNK_TOKENS = 4096
WINDOW_SHARE = 0.5  # of the embedding model's window, for auto chunks


@dataclass(frozen=True, slots=True)
class Chunking:
    max_tokens: int
    overlap: int

    def describe(self) -> dict[str, Any]:
        """The ``chunking_strategy`` a vector store file shows (always ``static``
        with its numbers, as OpenAI shows an ``auto`` one once it is applied)."""
        return {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": self.max_tokens,
                "chunk_overlap_tokens": self.overlap,
            },
        }


def strategy(requested: dict[str, Any] | None, window: int | None) -> Chunking:
    """The chunking of a (validated) ``chunking_strategy``; ``window``: the
    embedding model's token limit, when known, which ``auto`` keeps under."""
    if requested is None or requested.get("type", "auto") == "auto":
        size = AUTO_MAX_TOKENS
        if window is not None:
            # The embedding model's tokenizer is not this one: BERT's WordPiece
            # counted up to 1.4 times tiktoken's tokens on this README's markup.
            size = max(16, min(size, int(window * WINDOW_SHARE)))
        return Chunking(size, min(AUTO_OVERLAP_TOKENS, size // 2))
    static = requested["static"]
    return Chunking(static["max_chunk_size_tokens"], static["chunk_overlap_tokens"])


def windows(count: int, max_tokens: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows ``[start, end)`` covering ``count`` tokens."""
    if count == 0:
        return []
    step = max(1, max_tokens - overlap)
    spans = []
    start = 0
    while True:
        end = min(start + max_tokens, count)
        spans.append((start, end))
        if end == count:
            return spans
        start += step


def spans(raw: bytes, encoding: tiktoken.Encoding, chunking: Chunking) -> list[tuple[int, int]]:
    """The byte spans ``[start, end)`` of the chunks of UTF-8 text ``raw``."""
    tokens = encoding.encode(raw.decode("utf-8"), disallowed_special=())
    lengths = [len(piece) for piece in encoding.decode_tokens_bytes(tokens)]
    starts = list(accumulate(lengths, initial=0))  # byte offset where each token begins
    starts[-1] = len(raw)
    return [
        (_char_start(raw, starts[start]), _char_start(raw, starts[end]))
        for start, end in windows(len(tokens), chunking.max_tokens, chunking.overlap)
    ]


def chunk_text(text: str, encoding: tiktoken.Encoding, chunking: Chunking) -> list[str]:
    """The chunks of ``text``, those of only whitespace left out."""
    raw = text.encode("utf-8")
    chunks = (raw[start:end].decode("utf-8") for start, end in spans(raw, encoding, chunking))
    return [chunk for chunk in chunks if chunk.strip()]


def _char_start(raw: bytes, offset: int) -> int:
    """``offset``, moved back to the first byte of the character it falls in."""
    while 0 < offset < len(raw) and raw[offset] & 0xC0 == 0x80:
        offset -= 1
    return offset
