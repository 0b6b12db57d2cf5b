"""A text's marks: its UTF-8 form translated so that a few memchr-speed
lookups tell the scanner what the text cannot hold.

``Hints.marks`` turns each ASCII digit into ``DIGIT_MARK``, each ASCII
capital into ``UPPER_MARK`` and each hint character of the scanner's rules
(an ``@``, a dash...) into ``HINT_MARK``; every other byte stays itself. From
the marks the scanner reads whether the text holds any hint
(``Hints.absent``), where its digits are and how many (``locate_digits``),
and whether it holds one of a rule's shapes (``holds_any``: ``AA00``, two
capitals and two digits, for an IBAN). A text that fails these is passed
over without running a pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import methodcaller
from typing import Final

# Integers: ``int in bytes`` is a memchr, while ``bytes in bytes`` first fails
# (and formats an error) reading its operand as an integer.
DIGIT_MARK: Final = 0x30  # "0"
HINT_MARK: Final = 0
_DIGIT_CHAR: Final = "0"  # DIGIT_MARK in marks read as Latin-1
UPPER_MARK: Final = 0x41  # "A"
_ASCII_DIGITS: Final = range(0x30, 0x3A)
_ASCII_CAPITALS: Final = range(0x41, 0x5B)


@dataclass(frozen=True, slots=True)
class Hints:
    """What every finding of a scanner's rules holds: one of the ASCII
    characters ``chars``, or one of ``literals``. Most answers and much prose
    hold none, which one C loop tells: translating the text's UTF-8 form by
    ``marks`` (no other character's UTF-8 form holds an ASCII byte), then two
    memchr-speed lookups. The table deletes nothing, so ``bytes.translate``
    builds no table of its own for each call."""

    chars: bytes
    literals: tuple[str, ...] = ()
    marks: bytes = field(init=False, repr=False, compare=False)
    # Digits are marked alike: when one is a hint, every digit counts as one
    # (a text with some other digit is scanned, never skipped wrongly).
    digit_hints: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = bytearray(range(256))
        for byte in _ASCII_DIGITS:
            table[byte] = DIGIT_MARK
        for byte in _ASCII_CAPITALS:
            table[byte] = UPPER_MARK
        if any(byte in _ASCII_CAPITALS for byte in self.chars):
            raise ValueError("capitals are marked as such, never as hints")
        for byte in self.chars:
            if byte not in _ASCII_DIGITS:
                table[byte] = HINT_MARK
        object.__setattr__(self, "marks", bytes(table))
        object.__setattr__(self, "digit_hints", any(b in _ASCII_DIGITS for b in self.chars))

    def absent(self, text: str, marks: bytes) -> bool:
        """True when ``text`` holds no hint (a NUL counts as one); ``marks``:
        its UTF-8 form translated by ``self.marks``."""
        if HINT_MARK in marks or (self.digit_hints and DIGIT_MARK in marks):
            return False
        for literal in self.literals:  # noqa: SIM110 (all() would add a generator frame)
            if literal in text:
                return False
        return True


# A text in UTF-8, a lone surrogate (which JSON can carry) passed through, not
# raising. A C callable: the scan's hot path pays no Python frame for it.
utf8: Final[Callable[[str], bytes]] = methodcaller("encode", "utf-8", "surrogatepass")
NO_HINTS: Final = Hints(b"")
_DIGIT: Final = re.compile(r"\d", re.ASCII)
# Where the ASCII digits of a text are: the first, one past the last, and how
# many there are at most.
Digits = tuple[int, int, int]
NO_DIGITS: Final[Digits] = (0, 0, 0)


def locate_digits(text: str, start: int, size: int, marks: str) -> Digits:
    """The ASCII digits of ``text[start:]``, whose UTF-8 form (``size`` bytes)
    translated by ``Hints.marks`` is ``marks`` (read as Latin-1; ``NO_DIGITS``
    without any). An ASCII text's are found by two memchr-speed finds and a
    count: a regular expression's ``\\d`` costs some fifty instructions a
    character."""
    if size == len(text) - start:  # ASCII: a byte a character
        first = marks.find(_DIGIT_CHAR)
        if first < 0:
            return NO_DIGITS
        last = marks.rfind(_DIGIT_CHAR)
        return first + start, last + 1 + start, marks.count(_DIGIT_CHAR, first)
    found = _DIGIT.search(text, start)
    return NO_DIGITS if found is None else (found.start(), len(text), len(text) - found.start())


def holds_any(shapes: str, marked: tuple[str, ...]) -> bool:
    """Whether a text's marks (read as Latin-1) hold any of a rule's shapes
    (``Rule.marked``)."""
    for shape in marked:  # noqa: SIM110 (any() would add a generator frame)
        if shape in shapes:
            return True
    return False
