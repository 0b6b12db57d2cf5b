"""Finding spans in text, whole or as it streams, and the placeholders that
replace them.

A ``Scanner`` runs a few rules (a pattern, a cheap pre-check, a validator) in
one left-to-right scan: the earliest match (then the longest) is taken, and
the scan goes on after it. Each rule's pattern is searched for only from where
a match can start: just before the first occurrence of what it needs (found
between the text's first and last digit for needs that start and end with
one), after the last space before it for rules whose matches hold none
(searching at every position finds the same; a test checks it). On a
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
from dataclasses import dataclass
from operator import methodcaller

import regex

# Lookbehinds of the rules see this much already released text.
CONTEXT_CHARS = 8


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
            needs_string=None if flags & re.IGNORECASE else string,
        )


# A finding: (start, end, label). A tuple, made in C: a class's __init__ would
# be a Python call for every candidate.
Span = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Hints:
    """What every finding of a scanner's rules holds: one of the ASCII
    characters ``chars``, or one of ``literals``. Most answers and much prose
    hold none, which deleting ``chars`` from the text's UTF-8 form tells in
    one C loop (a tenth of a regular expression's cost a character; no other
    character's UTF-8 form holds an ASCII byte)."""

    chars: bytes
    literals: tuple[str, ...] = ()

    def absent(self, text: str, data: bytes) -> bool:
        """True when ``text``, whose UTF-8 form is ``data``, holds no hint."""
        if len(data.translate(None, self.chars)) < len(data):
            return False
        for literal in self.literals:  # noqa: SIM110 (all() would add a generator frame)
            if literal in text:
                return False
        return True


# A text in UTF-8, a lone surrogate (which JSON can carry) passed through, not
# raising. A C callable: the scan's hot path pays no Python frame for it.
utf8: Callable[[str], bytes] = methodcaller("encode", "utf-8", "surrogatepass")


def _next(rule: Rule, text: str, position: int, digits: Digits) -> Span | None:
    """The rule's first valid, non-empty match from ``position`` (after a
    rejected candidate, say digits failing the Luhn check, the next position
    is tried: what is found never depends on how far a rejected one ran)."""
    needs = rule.needs
    while True:
        # No match starts before the first occurrence of what it needs, less
        # its reach: the search starts there (or is not run).
        if needs is None:
            at = position
        elif rule.needs_string is not None:
            at = text.find(rule.needs_string, position)
            if at < 0:
                return None
        else:
            if rule.between_digits:
                first, end, _ = digits
                found = needs.search(text, first if position < first else position, end)
            else:
                found = needs.search(text, position)
            if found is None:
                return None
            at = found.start()
        if at - rule.reach > position:
            position = at - rule.reach
        if rule.spaceless:
            space = text.rfind(" ", position, at)
            if space >= 0:
                position = space + 1
        match = rule.whole.search(text, position)
        if match is None:
            return None
        found_at, end = match.span()
        if end > found_at and (rule.valid is None or rule.valid(match.group())):
            return found_at, end, rule.label
        position = found_at + 1


def _global_flags(pattern: str) -> bool:
    """Whether a pattern starts with global inline flags such as ``(?i)``."""
    return bool(_GLOBAL_FLAGS.match(pattern))


_GLOBAL_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")
_DIGIT = re.compile(r"\d", re.ASCII)
# Each digit byte as b"0", every other byte as it is (none of them is b"0").
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
# Where the ASCII digits of a text are: the first, one past the last, and how
# many there are at most.
Digits = tuple[int, int, int]
_NO_DIGITS: Digits = (0, 0, 0)


def _digits(text: str, start: int, data: bytes) -> Digits:
    """The ASCII digits of ``text[start:]``, whose UTF-8 form is ``data``
    (``_NO_DIGITS`` without any). An ASCII text's are found by a translate,
    two memchr-speed finds and a count: a regular expression's ``\\d`` costs
    some fifty instructions a character."""
    if len(data) == len(text) - start:  # ASCII: a byte a character
        marks = data.translate(_DIGITS_AS_ZERO)
        first = marks.find(b"0")
        if first < 0:
            return _NO_DIGITS
        return first + start, marks.rfind(b"0") + 1 + start, marks.count(b"0", first)
    found = _DIGIT.search(text, start)
    return _NO_DIGITS if found is None else (found.start(), len(text), len(text) - found.start())


class Scanner:
    def __init__(self, rules: Iterable[Rule], hints: Hints | None = None) -> None:
        """``hints``: what every match of every rule holds (None: no pre-check)."""
        self.rules = tuple(rules)
        self._hints = hints
        self._counts_digits = any(rule.between_digits or rule.min_digits for rule in self.rules)
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
        data = b""
        if self._hints is not None or self._counts_digits:
            data = utf8(text[start:] if start else text)
            if self._hints is not None and self._hints.absent(text, data):
                return []
        digits = _digits(text, start, data) if self._counts_digits else _NO_DIGITS
        digit_count = digits[2]
        # The next valid match of each rule that has one, with its rule (in
        # the rules' order, so that of two equal matches the first rule's wins).
        upcoming: list[tuple[Span, Rule]] = []
        for rule in self.rules:
            if rule.min_digits > digit_count:
                continue
            span = _next(rule, text, start, digits)
            if span is not None:
                upcoming.append((span, rule))
        spans: list[Span] = []
        while upcoming:
            best = upcoming[0][0]
            for span, _ in upcoming:
                if span[0] < best[0] or (span[0] == best[0] and span[1] > best[1]):
                    best = span
            spans.append(best)
            position = best[1]
            # The scan goes on after the finding: matches starting before its
            # end are searched for again from there.
            kept: list[tuple[Span, Rule]] = []
            for span, rule in upcoming:
                if span[0] < position:
                    found = _next(rule, text, position, digits)
                    if found is None:
                        continue
                    span = found
                kept.append((span, rule))
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
