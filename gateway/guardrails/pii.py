"""Personal data detectors: pure functions over text, no I/O.

Each detector is a regular expression that finds candidates cheaply and, for
the kinds with a checksum, a validator that rejects look-alikes: card numbers
must pass the Luhn check, IBANs the ISO 13616 mod-97 check, IP addresses must
parse. A detector also names a cheap pre-check (a character the kind cannot
do without), so a text without digits never runs the number patterns.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gateway.config.guardrails import PiiKind
from gateway.guardrails.marks import DIGIT_MARK, Hints, utf8


def luhn_valid(digits: str | bytes) -> bool:
    """The Luhn checksum of a string of ASCII digits (card numbers)."""
    total = 0
    for position, value in enumerate(
        reversed(digits.encode() if isinstance(digits, str) else digits)
    ):
        value -= 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616: country, check digits, then the account; mod 97 of the
    rearranged number (letters as 10..35) is 1."""
    iban = candidate.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    if not iban.isalnum() or not iban.isascii():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


# What card and phone patterns let in besides digits.
_SEPARATORS: Final = b" -.()+"


def _digits(number: str) -> bytes:
    """The digits of a card or phone candidate (ASCII, as its pattern is):
    one C loop deletes the separators."""
    return number.encode("ascii").translate(None, _SEPARATORS)


def card_valid(candidate: str) -> bool:
    digits = _digits(candidate)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def phone_valid(candidate: str) -> bool:
    # Counted in the hint marks, which turn each digit into DIGIT_MARK: a
    # translate that deletes the separators builds a table of its own per call.
    count = candidate.encode("ascii").translate(HINTS.marks).count(DIGIT_MARK)
    # An international prefix or an area code in brackets says "phone" even when short.
    if candidate[0] in "+(":
        return 7 <= count <= 15
    return 9 <= count <= 15 and not (count >= 13 and luhn_valid(_digits(candidate)))


def ip_valid(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def ipv6_valid(candidate: str) -> bool:
    # "::" alone, or clock times such as 10:30:00, are not addresses worth masking.
    return (
        candidate.count(":") >= 2
        and sum(c.isalnum() for c in candidate) >= 3
        and (ip_valid(candidate))
    )


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of finding: its placeholder label, its pattern, what every
    match holds, and a validator.

    Every match holds ``needs`` starting at most ``reach`` characters after the
    match's own start, so a pattern is only searched for from just before an
    occurrence of it: an ``@`` or a few digits are found at C speed, and most
    texts never run most patterns. With ``between_digits`` (every match of
    ``needs`` starts and ends with a digit) it is searched for only between
    the text's first and last digit; with ``spaceless``, from the last space
    before it. A text with fewer than ``min_digits`` digits is passed over:
    the validator rejects every match with fewer.
    """

    label: str  # placeholder prefix: [EMAIL_1]
    pattern: str
    needs: str
    reach: int = 0
    valid: Callable[[str], bool] | None = None
    spaceless: bool = False  # no match holds a space (so none starts before one)
    between_digits: bool = False
    min_digits: int = 0
    # Every match's marks (``gateway.guardrails.marks``: ``0`` a digit, ``A`` a
    # capital, NUL another hint) hold one of these; a text whose marks hold none
    # is passed over.
    marked: tuple[str, ...] = ()


# Every kind needs a digit, ``@``, ``:``, ``_`` or ``-``, or starts with one
# of three literals.
HINTS: Final = Hints(b"0123456789@:_-", ("AKIA", "AIza", "eyJ"))


def may_hold_pii(text: str, start: int = 0) -> bool:
    """False when ``text[start:]`` cannot hold a finding of any kind (most
    answers and much prose fail this at C speed)."""
    return not HINTS.absent(text, utf8(text[start:] if start else text).translate(HINTS.marks))


# Numbers start where a run of digit groups starts, never inside one: the
# lookbehinds follow a number's first character (``.`` is that character),
# so a pattern led by it is only tried where such a character is (``re``
# skips to those); led by lookbehinds, it was tried at every position.
_NOT_IN_WORD: Final = r"(?<![\w@.+-].)(?<!\d[ .-].)"
_SECRET: Final = (
    r"(?<![\w-])(?:"
    r"sk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # a JWT
    r")(?![\w-])"
)
# What every secret holds, led by a character rare in prose (a dash or an
# underscore, checked behind; the J of a JWT's "eyJ"), at most 6 characters
# after its start: ``re`` skips to those few characters (led by s, r, p, e,
# g and x, the needs were tried at a quarter of the letters of any prose).
_SECRET_NEEDS: Final = (
    r"-(?<=sk-)|-(?<=glpat-)|-(?<=xox[abposr]-)"
    r"|_(?<=[srp]k_)|_(?<=gh[pousr]_)|_(?<=github_)"
    r"|AKIA|AIza|J(?<=eyJ)"
)
# The same in marks: its needs with capitals as A and dashes and underscores
# as NUL (AKIA is AAAA): one ``in`` each, a few instructions a character of
# the marks, where searching the needs took some ten thousand instructions in
# a paragraph.
_SECRET_MARKED: Final = (
    "sk\0", "glpat\0", "xox", "rk\0", "pk\0", "github\0", "AAAA", "AAza", "eyA",
    "ghp\0", "gho\0", "ghu\0", "ghs\0", "ghr\0",
)  # fmt: skip
_IP_END: Final = r"(?![\w:]|\.\d)"

DETECTORS: Final[dict[PiiKind, tuple[Detector, ...]]] = {
    "secret": (Detector("SECRET", _SECRET, _SECRET_NEEDS, reach=6, marked=_SECRET_MARKED),),
    "email": (
        Detector(
            "EMAIL",
            r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
            r"\.[A-Za-z]{2,24}(?![\w-])",
            "@",
            reach=64,
            spaceless=True,
        ),
    ),
    "iban": (
        Detector(
            "IBAN",
            r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![\w])",
            r"\d\d(?<=[A-Z]{2}\d\d)",  # led by the digits: twice as fast to search as [A-Z]
            reach=2,
            valid=iban_valid,
            between_digits=True,
            marked=("AA00",),
        ),
    ),
    "ip_address": (
        Detector(
            "IP_ADDRESS",
            r"(?<![\w.:])(?:\d{1,3}\.){3}\d{1,3}" + _IP_END,
            r"\d\.\d",
            reach=2,
            valid=ip_valid,
            between_digits=True,
            min_digits=4,
            marked=("0.0",),
        ),
        Detector(
            "IP_ADDRESS",
            r"(?<![\w.:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}"
            r"(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?" + _IP_END,
            ":",
            reach=4,
            valid=ipv6_valid,
        ),
    ),
    "credit_card": (
        Detector(
            "CREDIT_CARD",
            r"\d" + _NOT_IN_WORD + r"\d{3}(?:[ -]?\d{3,4}){2,3}(?:[ -]?\d{1,4})?"
            r"(?![\w]|[.,]\d)",
            r"\d{4}",
            valid=card_valid,
            between_digits=True,
            min_digits=13,
        ),
    ),
    "phone": (
        Detector(
            "PHONE",
            # +country (area) number, (area) number, or number, each led by its
            # first character: exactly the matches of the same pattern written
            # with two optional groups after the lookbehinds (a test compares).
            r"(?:\+" + _NOT_IN_WORD + r"\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}"
            r"|\(" + _NOT_IN_WORD + r"\d{1,4}\)[ .-]?\d{1,4}"
            r"|\d" + _NOT_IN_WORD + r"\d{0,3})"
            r"(?:[ .-]?\d{2,4}){1,5}(?![\w]|[.,]\d)",
            r"\d[ .-]?\d\d",
            reach=16,
            valid=phone_valid,
            between_digits=True,
            min_digits=7,
        ),
    ),
}
