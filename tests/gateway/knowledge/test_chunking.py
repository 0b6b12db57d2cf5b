"""Chunking: token windows of the whole text, cut anywhere, never inside a
character, overlapping as asked, and the text again once overlaps are out."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.knowledge.chunking import Chunking, chunk_text, spans, strategy, windows
from gateway.tokens import TokenCounter

ENCODING = TokenCounter().load()
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=3000)


@given(text=texts, size=st.integers(2, 60), data=st.data())
@settings(max_examples=150, deadline=None)
def test_chunks_cover_the_text_and_overlap_as_asked(
    text: str, size: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(0, size // 2))
    raw = text.encode("utf-8")
    cut = spans(raw, ENCODING, Chunking(size, overlap))
    if not raw:
        assert cut == []
        return
    assert cut[0][0] == 0 and cut[-1][1] == len(raw)
    rebuilt = b""
    for index, (start, end) in enumerate(cut):
        piece = raw[start:end]
        piece.decode("utf-8")  # never inside a character
        if index:
            previous_end = cut[index - 1][1]
            assert start <= previous_end  # windows touch or overlap
            rebuilt += raw[previous_end:end]
        else:
            rebuilt = piece
    assert rebuilt == raw


@given(count=st.integers(0, 5000), size=st.integers(1, 900), data=st.data())
def test_windows_step_by_size_minus_overlap(count: int, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size // 2))
    found = windows(count, size, overlap)
    if count == 0:
        assert found == []
        return
    assert found[0][0] == 0 and found[-1][1] == count
    assert all(end - start <= size for start, end in found)
    step = max(1, size - overlap)
    assert all(b[0] - a[0] == step for a, b in pairwise(found))


def test_token_counts_and_whitespace_chunks() -> None:
    text = " ".join(f"word{n}" for n in range(2000))
    chunks = chunk_text(text, ENCODING, Chunking(100, 20))
    counts = [len(ENCODING.encode(c)) for c in chunks]
    assert max(counts) <= 101 and min(counts[:-1]) >= 99  # a window, re-encoded
    assert chunks[0].startswith("word0 ") and chunks[-1].endswith("word1999")
    assert chunk_text("  \n\t ", ENCODING, Chunking(100, 20)) == []


@pytest.mark.parametrize(
    ("requested", "window", "expected"),
    [
        (None, None, Chunking(800, 400)),
        ({"type": "auto"}, 4096, Chunking(800, 400)),
        (None, 256, Chunking(128, 64)),  # MiniLM's 256 tokens, with a margin
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 50},
            },
            256,
            Chunking(300, 50),
        ),
    ],
)
def test_strategies(requested: dict | None, window: int | None, expected: Chunking) -> None:
    assert strategy(requested, window) == expected
    assert expected.describe()["static"]["max_chunk_size_tokens"] == expected.max_tokens
