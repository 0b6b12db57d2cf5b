"""A text's marks: what the translation turns each character into, whether
a text holds a hint, and where its digits are."""

from __future__ import annotations

import pytest

from gateway.guardrails.marks import NO_DIGITS, Hints, holds_any, locate_digits, utf8
from gateway.guardrails.pii import HINTS


def marks_of(text: str, hints: Hints = HINTS) -> bytes:
    return utf8(text).translate(hints.marks)


def test_the_translation_marks_digits_capitals_and_hints() -> None:
    assert marks_of("Mail a@b.io, call +1 (55) 4-3") == b"Aail a\0b.io, call +0 (00) 0\x000"
    assert marks_of("naïve É") == "naïve É".encode()  # only ASCII is marked


def test_a_capital_cannot_be_a_hint() -> None:
    with pytest.raises(ValueError, match="capitals"):
        Hints(b"@K")


def test_a_text_without_hints_is_told_apart() -> None:
    hints = Hints(b"@", literals=("eyJ",))
    assert hints.absent("no address here", marks_of("no address here", hints))
    assert not hints.absent("a@b", marks_of("a@b", hints))
    assert not hints.absent("token eyJhbG", marks_of("token eyJhbG", hints))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no digits", NO_DIGITS),
        ("call 555 0100 now", (5, 13, 7)),
        ("x7", (1, 2, 1)),
        ("é 12", (2, 4, 2)),  # not ASCII: from the first digit to the end
    ],
)
def test_the_digits_are_located(text: str, expected: tuple[int, int, int]) -> None:
    marks = marks_of(text).decode("latin-1")
    assert locate_digits(text, 0, len(utf8(text)), marks) == expected


def test_the_digits_are_located_from_a_start() -> None:
    text = "12 ab 345"
    tail = utf8(text[3:])
    marks = tail.translate(HINTS.marks).decode("latin-1")
    assert locate_digits(text, 3, len(tail), marks) == (6, 9, 3)


@pytest.mark.parametrize(
    ("text", "held"),
    [("IBAN DE89 3704", True), ("iban de89 3704", False), ("DE 89", False), ("10.0.0.1", True)],
)
def test_a_text_holds_a_rules_shapes(text: str, held: bool) -> None:
    assert holds_any(marks_of(text).decode("latin-1"), ("AA00", "0.0")) is held
