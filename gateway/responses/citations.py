"""``file_search`` sources in a model's answer: ``[n]`` markers out,
``file_citation`` annotations in, as OpenAI's answers carry them.

The model is given numbered sources and asked to cite them as ``[1]`` or
``[1, 3]``. A marker naming given sources is taken out of the text (with the
spaces before it) and becomes one annotation per source, its ``index`` the
position in the text where the marker stood (OpenAI: "the index in the
output text at which to insert the file citation"). A bracketed number that
names no source stays text. An answer that cites nothing by marker (small
models rarely do) cites every file it was given, at the end of its text.

Streams are fed delta by delta: text that may still become a marker (spaces,
``[``, digits and commas at the end of a delta) is held back until the next
delta settles it, so what was sent is never taken back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Body = dict[str, Any]
MARKER = re.compile(r"[ \t]*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# What may still grow into a marker at the end of a delta.
PARTIAL = re.compile(r"[ \t]*(?:\[[\d,\s]*)?\Z")
MAX_HELD = 32


@dataclass(frozen=True, slots=True)
class Source:
    number: int  # as the model saw it: [number]
    file_id: str
    filename: str


def citation(source: Source, index: int) -> Body:
    return {
        "type": "file_citation",
        "file_id": source.file_id,
        "filename": source.filename,
        "index": index,
    }


class Citations:
    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources
        self._by_number = {s.number: s for s in sources}
        self._held = ""
        self._length = 0  # characters of text given out so far
        self.annotations: list[Body] = []

    def feed(self, text: str) -> tuple[str, list[Body]]:
        """The text to send now, and the annotations it completed."""
        text = self._held + text
        self._held = ""
        pieces: list[str] = []
        added: list[Body] = []
        position = 0
        for marker in MARKER.finditer(text):
            numbers = (int(n) for n in marker.group(1).split(","))
            cited = [self._by_number[n] for n in numbers if n in self._by_number]
            if not cited:
                continue
            pieces.append(text[position : marker.start()])
            self._length += marker.start() - position
            added += [citation(source, self._length) for source in dict.fromkeys(cited)]
            position = marker.end()
        rest = text[position:]
        partial = PARTIAL.search(rest)
        if partial is not None and 0 < len(partial.group()) <= MAX_HELD:
            self._held = partial.group()
            rest = rest[: partial.start()]
        pieces.append(rest)
        self._length += len(rest)
        self.annotations += added
        return "".join(pieces), added

    def finish(self) -> tuple[str, list[Body]]:
        """The text still held back, and the closing annotations (every file,
        at the end, when nothing was cited by marker)."""
        rest, self._held = self._held, ""
        self._length += len(rest)
        added: list[Body] = []
        if not self.annotations:
            files = {s.file_id: s for s in self.sources}
            added = [citation(source, self._length) for source in files.values()]
        self.annotations += added
        return rest, added

    def annotate(self, text: str) -> tuple[str, list[Body]]:
        """A whole answer: its text without markers, and all its annotations."""
        head, _ = self.feed(text)
        tail, _ = self.finish()
        return head + tail, self.annotations
