"""Source markers in an answer become file_citation annotations, whole or
streamed in any split, and the two agree."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.responses.citations import Citations, Source

SOURCES = [Source(1, "file-a", "a.md"), Source(2, "file-b", "b.pdf"), Source(3, "file-a", "a.md")]


def cite(file_id: str, filename: str, index: int) -> dict[str, object]:
    return {"type": "file_citation", "file_id": file_id, "filename": filename, "index": index}


def test_markers_are_taken_out_and_annotated_where_they_stood() -> None:
    text, annotations = Citations(SOURCES).annotate("Tea steeps [1]. Bread rises [2, 3]. Done [9].")
    assert text == "Tea steeps. Bread rises. Done [9]."
    assert annotations == [
        cite("file-a", "a.md", 10),
        cite("file-b", "b.pdf", 23),
        cite("file-a", "a.md", 23),
    ]


def test_an_answer_without_markers_cites_every_file_at_its_end() -> None:
    text, annotations = Citations(SOURCES).annotate("No markers here.")
    assert text == "No markers here."
    assert annotations == [cite("file-a", "a.md", 16), cite("file-b", "b.pdf", 16)]


ANSWERS = st.lists(
    st.sampled_from(
        ["Tea", " steeps", " [1]", "[2]", " [", "1", "]", ",", " 3]", "[x]", ". ", "\n"]
    ),
    max_size=30,
).map("".join)


@given(answer=ANSWERS, cuts=st.lists(st.integers(0, 200), max_size=8))
def test_streamed_in_any_pieces_it_equals_the_whole(answer: str, cuts: list[int]) -> None:
    whole_text, whole_annotations = Citations(SOURCES).annotate(answer)
    points = sorted({min(c, len(answer)) for c in cuts})
    pieces = [answer[a:b] for a, b in zip([0, *points], [*points, len(answer)], strict=True)]
    streamed = Citations(SOURCES)
    text = ""
    annotations = []
    for piece in pieces:
        sent, added = streamed.feed(piece)
        text += sent
        annotations += added
    sent, added = streamed.finish()
    assert text + sent == whole_text
    assert annotations + added == whole_annotations
    assert all(0 <= a["index"] <= len(whole_text) for a in whole_annotations)
