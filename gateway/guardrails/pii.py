"""Personal data detectors: pure functions over text, no I/O.

Each detector is a regular expression that finds candidates cheaply and, for
the kinds with a checksum, a validator that rejects look-alikes: card numbers
must pass the Luhn check, IBANs the ISO 13616 mod-97 check, IP addresses must
parse. A detector also names a cheap pre-check (a character the kind cannot
do without), so a text without digits never runs the number patterns.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.guardrails import PiiKind


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits (card numbers)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
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


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def card_valid(candidate: str) -> bool:
    digits = _digits(candidate)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def phone_valid(candidate: str) -> bool:
    count = len(_digits(candidate))
    # An international prefix or an area code in brackets says "phone" even when short.
    if candidate.startswith(("+", "(")):
        return 7 <= count <= 15
    return 9 <= count <= 15 and not card_valid(candidate)


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
    """One kind of finding: its placeholder label, pattern, pre-check and validator."""

    label: str  # placeholder prefix: [EMAIL_1]
    pattern: str
    needs: Callable[[str], object]  # falsy: the text cannot hold this kind (skip the pattern)
    valid: Callable[[str], bool] | None = None


_has_digit = re.compile(r"\d").search


def _has_at(text: str) -> bool:
    return "@" in text


def _has_digit_or_colon(text: str) -> bool:
    return _has_digit(text) is not None or ":" in text


# Numbers start where a run of digit groups starts, never inside one.
_NOT_IN_WORD = r"(?<![\w@.+-])(?<!\d[ .-])"
_SECRET = (
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
_SECRET_MARKERS = ("sk-", "_live_", "_test_", "AKIA", "gh", "glpat-", "xox", "AIza", "eyJ")

DETECTORS: dict[PiiKind, Detector] = {
    "secret": Detector("SECRET", _SECRET, re.compile("|".join(_SECRET_MARKERS)).search),
    "email": Detector(
        "EMAIL",
        r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
        r"(?![\w-])",
        _has_at,
    ),
    "iban": Detector(
        "IBAN",
        r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![\w])",
        _has_digit,
        iban_valid,
    ),
    "ip_address": Detector(
        "IP_ADDRESS",
        r"(?<![\w.:])(?:(?:\d{1,3}\.){3}\d{1,3}"
        r"|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?)"
        r"(?![\w:]|\.\d)",
        _has_digit_or_colon,
        lambda candidate: ip_valid(candidate) if ":" not in candidate else ipv6_valid(candidate),
    ),
    "credit_card": Detector(
        "CREDIT_CARD",
        _NOT_IN_WORD + r"\d{4}(?:[ -]?\d{3,4}){2,3}(?:[ -]?\d{1,4})?(?![\w]|[.,]\d)",
        _has_digit,
        card_valid,
    ),
    "phone": Detector(
        "PHONE",
        _NOT_IN_WORD + r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?"
        r"\d{1,4}(?:[ .-]?\d{2,4}){1,5}(?![\w]|[.,]\d)",
        _has_digit,
        phone_valid,
    ),
}
