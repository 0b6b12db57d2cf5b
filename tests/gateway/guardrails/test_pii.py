"""The PII detectors: what each kind finds, the checksums that reject
look-alikes (Luhn, IBAN mod 97), and what must stay untouched."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config.guardrails import PiiGuardrailConfig
from gateway.guardrails.pii import DETECTORS, card_valid, iban_valid, luhn_valid, may_hold_pii
from gateway.guardrails.scan import Rule, Scanner
from gateway.guardrails.text import TextGuard

# What the guardrail runs: every detector with its shortcuts, ASCII classes.
PRODUCTION = TextGuard("pii", PiiGuardrailConfig(kind="pii")).scanner


def found(text: str) -> list[tuple[str, str]]:
    return [(label, text[start:end]) for start, end, label in PRODUCTION.find(text)]


@pytest.mark.parametrize(
    ("text", "label", "value"),
    [
        ("mail jane.doe+news@mail.example.co.uk now", "EMAIL", "jane.doe+news@mail.example.co.uk"),
        ("call +1 (555) 123-4567 today", "PHONE", "+1 (555) 123-4567"),
        ("call 030 1234 5678 today", "PHONE", "030 1234 5678"),
        ("call +44 20 7946 0958.", "PHONE", "+44 20 7946 0958"),
        ("card 4111 1111 1111 1111 ok", "CREDIT_CARD", "4111 1111 1111 1111"),
        ("card 5500-0000-0000-0004 ok", "CREDIT_CARD", "5500-0000-0000-0004"),
        ("amex 378282246310005.", "CREDIT_CARD", "378282246310005"),
        ("visa 4222222222222, thirteen digits", "CREDIT_CARD", "4222222222222"),
        ("call +1 23 4567, seven digits", "PHONE", "+1 23 4567"),
        ("iban DE89 3704 0044 0532 0130 00 ok", "IBAN", "DE89 3704 0044 0532 0130 00"),
        ("iban GB82WEST12345698765432 ok", "IBAN", "GB82WEST12345698765432"),
        ("host 10.0.0.255, ok", "IP_ADDRESS", "10.0.0.255"),
        ("host 1.2.3.4, four digits", "IP_ADDRESS", "1.2.3.4"),
        ("host fe80::1ff:fe23:4567:890a ok", "IP_ADDRESS", "fe80::1ff:fe23:4567:890a"),
        ("host 2001:db8::7.", "IP_ADDRESS", "2001:db8::7"),
        ("key sk-proj-Abcdefghijklmnopqrstuvwxyz0123 ok", "SECRET", None),
        ("key AKIAIOSFODNN7EXAMPLE ok", "SECRET", "AKIAIOSFODNN7EXAMPLE"),
        ("token ghp_" + "a" * 36 + " ok", "SECRET", "ghp_" + "a" * 36),
        ("key AIza" + "B" * 35 + " ok", "SECRET", "AIza" + "B" * 35),
        ("jwt eyJhbGciOiJIUzI1.eyJzdWIiOiIx.c2lnbmF0dXJl ok", "SECRET", None),
    ],
)
def test_each_kind_is_found(text: str, label: str, value: str | None) -> None:
    findings = found(text)
    assert may_hold_pii(text)  # the quick pre-check never hides a finding
    assert len(findings) == 1 and findings[0][0] == label
    if value is not None:
        assert findings[0][1] == value


@pytest.mark.parametrize(
    "text",
    [
        "Say hello in one short sentence.",
        "In 2024 we sold 12 units for 1,250.50 dollars.",
        "Meet on 2024-01-15 at 10:30:00 in room 101.",
        "version 1.2.3 and 10.0 and 3.14159",
        "card 4111 1111 1111 1112 fails Luhn",  # a typo is not a card
        "iban DE88 3704 0044 0532 0130 00 fails mod 97",
        "ip 999.1.1.1 is not an address",
        "ratio 16:9 and a::b",
        "an @mention and a user@localhost",
        "call 12345 or 555-123",  # too short for a phone
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert found(text) == []


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,!?'\n"))
def test_text_without_hints_has_no_findings(text: str) -> None:
    assert not may_hold_pii(text) or "AKIA" in text or "AIza" in text or "eyJ" in text
    assert may_hold_pii(text) or found(text) == []


def test_the_pre_check_reads_from_start_and_takes_any_string() -> None:
    assert may_hold_pii("mail a@b.io") and not may_hold_pii("a@b then words", 3)
    assert may_hold_pii("café 42") and not may_hold_pii("café crème")
    # A lone surrogate (JSON can carry one) has no UTF-8 form: still no error.
    assert not may_hold_pii("half \ud800 a pair") and may_hold_pii("\ud800 7")


def test_luhn_and_iban_checksums() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert card_valid("4012-8888-8888-1881") and not card_valid("4012-8888-8888-1882")
    assert iban_valid("FR14 2004 1010 0505 0001 3M02 606")
    assert not iban_valid("FR15 2004 1010 0505 0001 3M02 606")
    assert not iban_valid("DE89 3704")  # too short


def _luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it pass Luhn."""
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


@given(st.text(alphabet="0123456789", min_size=12, max_size=15))
def test_any_luhn_valid_16_digit_number_is_a_card(body: str) -> None:
    number = _luhn_complete(body.zfill(15)[:15])
    assert found(f"pay with {number} now") == [("CREDIT_CARD", number)]


@given(st.text(alphabet="0123456789", min_size=16, max_size=16))
def test_one_changed_digit_breaks_the_card(number: str) -> None:
    changed = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not (luhn_valid(number) and luhn_valid(changed))


@given(st.text(alphabet="0123456789", min_size=18, max_size=18), st.sampled_from(["DE", "FR"]))
def test_ibans_made_with_their_check_digits_are_valid(account: str, country: str) -> None:
    # The check digits are 98 - (account + country + "00") mod 97, per ISO 13616.
    numeric = "".join(str(int(c, 36)) for c in account + country + "00")
    check = 98 - int(numeric) % 97
    iban = f"{country}{check:02d}{account}"
    assert iban_valid(iban)
    assert found(f"IBAN {iban}.") == [("IBAN", iban)]


# Pieces of text that hold findings, near misses, and the characters the
# detectors' shortcuts key on (digits, "@", spaces, separators).
FRAGMENTS = [
    "jane.doe@example.com", "a@b", "x@y.io", "+1 (555) 123-4567", "030 1234 5678",
    "4111 1111 1111 1111", "4111-1111-1111-1112", "DE89 3704 0044 0532 0130 00", "GB82WEST",
    "10.0.0.255", "fe80::1ff:fe23", "10:30", "sk-" + "a" * 24, "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "b" * 36, "github_pat_" + "c" * 22, "glpat-" + "d" * 20, "xoxb-1234567890",
    "sk_live_" + "e" * 16, "AIza" + "f" * 35, "eyJhbGciOiJIUzI1.eyJzdWIiOiIx.c2lnbmF0dXJl",
    "task-based", "desk_", "eyJ", "+44 (20) 7946 0958", "(030) 1234 5678", "x+1 555 0100",
    "word", "two-line", "1", "42", "2024", "+", "(", ")", "-", ".", "@", ":", "_",
    "+1 23 4567", "4222222222222",  # a phone and a card with the fewest digits
    "naïve", "\uff15",  # not ASCII (a fullwidth 5: no digit to the detectors)
    # Near the shapes the rules' marks key on: capitals before digits, a digit
    # by a dot, a dash or underscore after a secret's letters.
    "de89 3704 0044 0532 0130 00", "DE8", "9.", "1.2", "sk_test_" + "g" * 16,
    "rk_live_" + "h" * 16, "pk_test_" + "i" * 16, "gho_" + "j" * 36, "xoxp-12345678901",
    "AIzb", "ey", "J", "GITHUB_",
]  # fmt: skip
REFERENCE = Scanner(
    Rule.compile(d.label, d.pattern, None, 0, d.valid, re.ASCII)
    for detectors in DETECTORS.values()
    for d in detectors
)


@given(st.lists(st.sampled_from(FRAGMENTS)), st.sampled_from([" ", "", ", ", "\n"]))
def test_the_shortcuts_find_what_searching_everywhere_finds(parts: list[str], sep: str) -> None:
    # The production scanner searches only where a match can start (between the
    # first and last digit, after the last space, ...) and passes over kinds
    # the text has too few digits for; searching at every position must agree.
    text = sep.join(parts)
    assert PRODUCTION.find(text) == REFERENCE.find(text)


# The phone and card patterns as first written: lookbehinds first, then optional
# groups. Production leads each with its first character, which ``re`` skips to.
AS_READ = {
    "PHONE": r"(?<![\w@.+-])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?"
    r"\d{1,4}(?:[ .-]?\d{2,4}){1,5}(?![\w]|[.,]\d)",
    "CREDIT_CARD": r"(?<![\w@.+-])(?<!\d[ .-])\d{4}(?:[ -]?\d{3,4}){2,3}(?:[ -]?\d{1,4})?"
    r"(?![\w]|[.,]\d)",
}


@given(st.lists(st.sampled_from(FRAGMENTS)), st.sampled_from([" ", "", ", ", "\n", "-", "."]))
def test_numbers_led_by_their_first_character_match_as_written_plainly(
    parts: list[str], sep: str
) -> None:
    text = sep.join(parts)
    for kind in ("phone", "credit_card"):
        (detector,) = DETECTORS[kind]
        led = re.compile(detector.pattern, re.ASCII)
        plain = re.compile(AS_READ[detector.label], re.ASCII)
        assert [m.span() for m in led.finditer(text)] == [m.span() for m in plain.finditer(text)]
