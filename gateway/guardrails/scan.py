"""Finding spans in text, whole or as it streams, and the placeholders that
replace them.

A ``Scanner`` runs a few rules (a pattern, a cheap pre-check, a validator) in
one left-to-right scan: the earliest match (then the longest) is taken, and
the scan goes on after it. Each rule's pattern is searched for only from where
a match can start: just before the first occurrence of what it needs (found
between the text's first and last digit for needs that start and end with
one), after the last space before it for rules whose matches hold none;
a rule is passed over altogether in a text with too few digits
(``min_digits``) or none of the shapes its matches hold (``marked``), both
read from one translation of the text (``gateway.guardrails.marks``).
Searching at every position finds the same; a test checks it. On a stream it
scans only what is not yet released, with ``regex``'s partial
matching: text is held back from the first place where a finding could still
be completing (a partial match, or a match touching the end of what arrived)
and released as soon as it cannot, or once more than ``hold_chars`` wait. The
released text and its findings are exactly those of the whole text whenever
no finding is longer than ``hold_chars``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

import regex

from gateway.guardrails.marks import (
    NO_DIGITS,
    NO_HINTS,
    Digits,
    Hints,
    holds_any,
    locate_digits,
    utf8,
)

# Lookbehinds of the rules see this much already released text.
CONTEXT_CHARS: Final = 8


@dataclass(frozen=True, slots=True)
class Rule:
    label: str  # what a placeholder says: EMAIL, PHONE, ..., REDACTED
    whole: re.Pattern[str]
    partial: regex.Pattern[str]
    # Every match holds ``needs`` at most ``reach`` characters after its start
    # (see ``gateway.guardrails.pii.Detector``); None: the pattern is searched
    # for everywhere. A ``needs`` that is a plain string (``@``) is found with
    # ``str.find``, which never touches a pattern.
    needs: re.Pattern[str] | None = None
    reach: int = 0
    valid: Callable[[str], bool] | None = None
    spaceless: bool = False  # no match holds a space
    # Every match of ``needs`` starts and ends with an ASCII digit: it is
    # searched for between the text's first and last digit, found once for all
    # such rules (most prose has few digits, in few places).
    between_digits: bool = False
    # Every valid match holds this many ASCII digits: a text with fewer is
    # passed over without searching (a year holds no phone number, let alone a
    # card's thirteen digits).
    min_digits: int = 0
    # Every match's marks (``gateway.guardrails.marks``) hold one of these: a
    # text whose marks hold none is passed over without searching.
    marked: tuple[str, ...] = ()
    needs_string: str | None = None

    @classmethod
    def compile(
        cls,
        label: str,
        pattern: str,
        needs: str | None = None,
        reach: int = 0,
        valid: Callable[[str], bool] | None = None,
        flags: int = 0,
        spaceless: bool = False,
        between_digits: bool = False,
        min_digits: int = 0,
        marked: tuple[str, ...] = (),
    ) -> Rule:
        wanted = None if needs is None else re.compile(needs, flags)
        # Without re.ASCII, \d also matches other scripts' digits.
        ascii_digits = bool(flags & re.ASCII)
        string = needs if needs and re.escape(needs) == needs else None
        return cls(
            label,
            whole=re.compile(pattern, flags),
            partial=regex.compile(pattern, flags),
            needs=wanted,
            reach=reach,
            valid=valid,
            spaceless=spaceless,
            between_digits=between_digits and ascii_digits and wanted is not None,
            min_digits=min_digits if ascii_digits else 0,
            marked=marked,
            needs_string=None if flags & re.IGNORECASE else string,
        )


# A finding: (start, end, label). A tuple, made in C: a class's __init__ would
# be a Python call for every candidate.
Span = tuple[int, int, str]


def _global_flags(pattern: str) -> bool:
    """Whether a pattern starts with global inline flags such as ``(?i)``."""
    return bool(_GLOBAL_FLAGS.match(pattern))


_GLOBAL_FLAGS: Final = re.compile(r"\(\?[aiLmsux]+\)")


class Search:
    """A rule's search: its first valid, non-empty match from a position, as
    (start, end), or None. Its fields are the rule's, read once (the scan runs
    it for every text); a class, not a closure, so a compiled scan calls it
    directly. After a rejected candidate (say digits failing the Luhn check)
    the next position is tried: what is found never depends on how far a
    rejected one ran."""

    __slots__ = (
        "between_digits",
        "marked",
        "needs",
        "reach",
        "spaceless",
        "string",
        "valid",
        "whole",
    )

    def __init__(self, rule: Rule) -> None:
        self.whole: Callable[[str, int], re.Match[str] | None] = rule.whole.search
        self.needs: Callable[..., re.Match[str] | None] | None = (
            None if rule.needs is None else rule.needs.search
        )
        self.string = rule.needs_string
        self.reach = rule.reach
        self.valid = rule.valid
        self.spaceless = rule.spaceless
        self.between_digits = rule.between_digits
        self.marked = rule.marked

    def next(self, text: str, position: int, digits: Digits) -> tuple[int, int] | None:
        string, needs, reach, valid = self.string, self.needs, self.reach, self.valid
        while True:
            # No match starts before the first occurrence of what it needs, less
            # its reach: the search starts there (or is not run).
            if string is not None:
                at = text.find(string, position)
                if at < 0:
                    return None
            elif needs is not None:
                if self.between_digits:
                    first = digits[0]
                    found = needs(text, first if position < first else position, digits[1])
                else:
                    found = needs(text, position)
                if found is None:
                    return None
                at = found.start()
            else:
                at = position
            if at - reach > position:
                position = at - reach
            if self.spaceless:
                space = text.rfind(" ", position, at)
                if space >= 0:
                    position = space + 1
            match = self.whole(text, position)
            if match is None:
                return None
            span = match.span()
            if span[1] > span[0] and (valid is None or valid(match.group())):
                return span
            position = span[0] + 1


class Scanner:
    def __init__(self, rules: Iterable[Rule], hints: Hints | None = None) -> None:
        """``hints``: what every match of every rule holds (None: no pre-check)."""
        self.rules = tuple(rules)
        self._hints = hints
        self._counts_digits = any(rule.between_digits or rule.min_digits for rule in self.rules)
        self._reads_marks = (
            hints is not None or self._counts_digits or any(rule.marked for rule in self.rules)
        )
        self._marks = (hints or NO_HINTS).marks
        # What runs on a text with n digits: ``self._plans[min(n, last)]``, the
        # rules that may match it in their order (which breaks ties).
        rules = self.rules
        searches = [(order, Search(rule), rule.label) for order, rule in enumerate(rules)]
        self._plans = tuple(
            tuple(s for s, rule in zip(searches, rules, strict=True) if rule.min_digits <= n)
            for n in range(max((rule.min_digits for rule in rules), default=0) + 1)
        )
        # Streams ask "may any rule still be matching from here?" at each new
        # position: one alternation answers for all the rules it can hold (global
        # flags such as (?i) would leak into the others, so those stay apart).
        joined = [r for r in self.rules if not _global_flags(r.whole.pattern)]
        apart = [r.partial for r in self.rules if _global_flags(r.whole.pattern)]
        if joined:
            apart.insert(0, regex.compile("|".join(f"(?:{r.whole.pattern})" for r in joined)))
        self._growing = tuple(apart)

    def find(self, text: str, start: int = 0) -> list[Span]:
        """The findings of ``text[start:]``, left to right: the earliest match of
        any rule (the longest of those starting together) wins, and the scan
        goes on after it. Being one scan from a position, it gives the same
        findings whether the text comes whole or in pieces."""
        hints, digits, shapes = self._hints, NO_DIGITS, ""
        if self._reads_marks:
            data = utf8(text[start:] if start else text)
            marks = data.translate(self._marks)
            if hints is not None and hints.absent(text, marks):
                return []
            # As a str: compiled, ``str`` has native find, rfind, count and
            # ``in``, where ``bytes`` methods are Python calls.
            shapes = marks.decode("latin-1")
            if self._counts_digits:
                digits = locate_digits(text, start, len(data), shapes)
        plans = self._plans
        plan = plans[digits[2]] if digits[2] < len(plans) else plans[-1]
        # The next valid match of each rule that has one, as (start, -end,
        # order, search, label): the least is the earliest, then the longest,
        # then the first rule's.
        upcoming: list[tuple[int, int, int, Search, str]] = []
        for order, search, label in plan:
            if search.marked and not holds_any(shapes, search.marked):
                continue
            found = search.next(text, start, digits)
            if found is not None:
                upcoming.append((found[0], -found[1], order, search, label))
        spans: list[Span] = []
        while upcoming:
            best = min(upcoming) if len(upcoming) > 1 else upcoming[0]
            position = -best[1]
            spans.append((best[0], position, best[4]))
            # The scan goes on after the finding: matches starting before its
            # end are searched for again from there.
            kept = []
            for entry in upcoming:
                if entry[0] < position:
                    found = entry[3].next(text, position, digits)
                    if found is None:
                        continue
                    entry = (found[0], -found[1], entry[2], entry[3], entry[4])
                kept.append(entry)
            upcoming = kept
        return spans

    def find_released(
        self, text: str, start: int, final: bool, max_hold: int
    ) -> tuple[list[Span], int]:
        """Streams: the findings in ``text[start:hold]`` and ``hold``, the end of
        what can be released now (``text[:start]`` is released context); at
        most ``max_hold`` characters stay held. With ``final`` the text is
        complete and everything is released."""
        if final:
            return self.find(text, start), len(text)
        # The first position from which some rule can still match up to the end
        # of what arrived (and maybe beyond): nothing from there on is final.
        hold = len(text)
        for position in range(start, len(text)):
            if any(
                pattern.fullmatch(text, position, partial=True) is not None
                for pattern in self._growing
            ):
                hold = position
                break
        # The window is bounded: a finding longer than it is released unmasked.
        hold = max(hold, len(text) - max_hold)
        if hold == start:
            return [], hold
        spans = self.find(text, start)
        # A finding that crosses the hold point is held whole.
        for span_start, span_end, _ in spans:
            if span_start < hold < span_end:
                hold = span_start
                break
        return [span for span in spans if span[1] <= hold], hold


class Vault:
    """One request's placeholders: the same value always gets the same one
    (numbered per label in order of appearance); only values masked with
    ``restorable`` are mapped back in the answer."""

    __slots__ = ("by_value", "counts", "restorable")

    def __init__(self) -> None:  # one per guarded request: no dataclass factories
        self.by_value: dict[tuple[str, str], str] = {}
        self.counts: dict[str, int] = {}
        self.restorable: dict[str, str] = {}  # placeholder -> value

    def mask(self, text: str, spans: list[Span], restorable: bool, start: int = 0) -> str:
        """``text[start:]`` with each span replaced by its placeholder."""
        by_value, counts, restores = self.by_value, self.counts, self.restorable
        parts = []
        position = start
        for span_start, span_end, label in spans:
            value = text[span_start:span_end]
            key = (label, value)
            placeholder = by_value.get(key)
            if placeholder is None:
                number = counts[label] = counts.get(label, 0) + 1
                placeholder = by_value[key] = f"[{label}_{number}]"
            if restorable:
                restores[placeholder] = value
            parts.append(text[position:span_start])
            parts.append(placeholder)
            position = span_end
        parts.append(text[position:])
        return "".join(parts)
