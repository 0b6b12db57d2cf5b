"""Finding spans in text, whole or as it streams, and the placeholders that
replace them.

A ``Scanner`` runs a few rules (a pattern, a cheap pre-check, a validator) and
returns non-overlapping spans, the earliest (then longest) winning. On a
stream it scans only what is not yet released, with ``regex``'s partial
matching: text is held back from the first place where a finding could still
be completing (a partial match, or a match touching the end of what arrived)
and released as soon as it cannot, or once more than ``hold_chars`` wait. The
released text and its findings are exactly those of the whole text whenever
no finding is longer than ``hold_chars``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import regex

# Lookbehinds of the rules see this much already released text.
CONTEXT_CHARS = 8


@dataclass(frozen=True, slots=True)
class Rule:
    label: str  # what a placeholder says: EMAIL, PHONE, ..., REDACTED
    whole: re.Pattern[str]
    partial: regex.Pattern[str]
    needs: Callable[[str], object] | None = None
    valid: Callable[[str], bool] | None = None

    @classmethod
    def compile(
        cls,
        label: str,
        pattern: str,
        needs: Callable[[str], object] | None = None,
        valid: Callable[[str], bool] | None = None,
    ) -> Rule:
        return cls(label, re.compile(pattern), regex.compile(pattern), needs, valid)


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    label: str


def _select(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans: earliest first, the longest of those starting together."""
    spans.sort(key=lambda s: (s.start, -s.end))
    chosen: list[Span] = []
    reach = -1
    for span in spans:
        if span.start >= reach:
            chosen.append(span)
            reach = span.end
    return chosen


class Scanner:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)

    def find(self, text: str) -> list[Span]:
        """The findings of a whole text."""
        spans = []
        for rule in self.rules:
            if rule.needs is not None and not rule.needs(text):
                continue
            for match in rule.whole.finditer(text):
                if match.end() > match.start() and (
                    rule.valid is None or rule.valid(match.group())
                ):
                    spans.append(Span(match.start(), match.end(), rule.label))
        return _select(spans) if len(spans) > 1 else spans

    def find_released(
        self, text: str, start: int, final: bool, max_hold: int
    ) -> tuple[list[Span], int]:
        """Streams: the findings in ``text[start:hold]`` and ``hold``, the end of
        what can be released now (``text[:start]`` is released context); at
        most ``max_hold`` characters stay held. With ``final`` the text is
        complete and everything is released."""
        if final:
            return [s for s in self.find(text) if s.start >= start], len(text)
        # The first position from which some rule can still match up to the end
        # of what arrived (and maybe beyond): nothing from there on is final.
        hold = len(text)
        for position in range(start, len(text)):
            if any(
                rule.partial.fullmatch(text, position, partial=True) is not None
                for rule in self.rules
            ):
                hold = position
                break
        # The window is bounded: a finding longer than it is released unmasked.
        hold = max(hold, len(text) - max_hold)
        if hold == start:
            return [], hold
        spans = [s for s in self.find(text) if s.start >= start]
        # A finding that crosses the hold point is held whole.
        for span in spans:
            if span.start < hold < span.end:
                hold = span.start
                break
        return [s for s in spans if s.end <= hold], hold


@dataclass(slots=True)
class Vault:
    """One request's placeholders: the same value always gets the same one
    (numbered per label in order of appearance); only values masked with
    ``restorable`` are mapped back in the answer."""

    by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    restorable: dict[str, str] = field(default_factory=dict)  # placeholder -> value

    def placeholder(self, label: str, value: str, restorable: bool) -> str:
        key = (label, value)
        found = self.by_value.get(key)
        if found is None:
            number = self.counts.get(label, 0) + 1
            self.counts[label] = number
            found = self.by_value[key] = f"[{label}_{number}]"
        if restorable:
            self.restorable[found] = value
        return found


def replace_spans(
    text: str, spans: list[Span], replacement: Callable[[Span, str], str], start: int = 0
) -> str:
    """``text`` with each span replaced by ``replacement(span, its text)``."""
    if not spans:
        return text
    parts = []
    position = start
    for span in spans:
        parts.append(text[position : span.start])
        parts.append(replacement(span, text[span.start : span.end]))
        position = span.end
    parts.append(text[position:])
    return "".join(parts)
