"""The ``guardrails:`` section of models.yaml and a model's ``guardrails:``
attachment. Guardrails are named once and attached per model (input and
output lists); each is discriminated on ``kind``:

    guardrails:
      pii:       {kind: pii, action: mask, restore_in_response: true}
      no-secrets: {kind: regex, patterns: ['(?i)internal[- ]only'], action: block}
      judge:     {kind: model, model: guard, block_when: '(?i)^unsafe'}
    models:
      chat: {targets: [...], guardrails: {input: [pii, judge], output: [pii]}}

Names are checked against the section, and a judge's model against
``models:``, by the loader (errors name the YAML path).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import regex
from pydantic import Field, field_validator

from adapters.config import Strict

PiiKind = Literal["email", "phone", "credit_card", "iban", "ip_address", "secret"]
PII_KINDS: tuple[PiiKind, ...] = ("email", "phone", "credit_card", "iban", "ip_address", "secret")


def compiles(pattern: str) -> str:
    """A pattern both ``re`` (whole texts) and ``regex`` (partial matches on streams) take."""
    try:
        re.compile(pattern)
        regex.compile(pattern)
    except (re.error, regex.error) as exc:
        raise ValueError(f"'{pattern}' is not a valid regular expression: {exc}") from exc
    return pattern


class _Guardrail(Strict):
    # Streams: text is held back at most this long while a finding may still be completing.
    hold_chars: int = Field(256, ge=16, le=65536, description="Longest finding held on a stream")


class PiiGuardrailConfig(_Guardrail):
    """Personal data: masked with placeholders (``[EMAIL_1]``) or refused."""

    kind: Literal["pii"]
    action: Literal["mask", "block"] = "mask"
    entities: list[PiiKind] = Field(default_factory=lambda: list(PII_KINDS), min_length=1)
    restore_in_response: bool = Field(
        False, description="Map placeholders in the answer back to the caller's own values"
    )


class RegexGuardrailConfig(_Guardrail):
    """Any text matching one of ``patterns``: refused, or masked as ``[REDACTED_1]``."""

    kind: Literal["regex"]
    patterns: list[str] = Field(min_length=1)
    action: Literal["block", "mask"] = "block"

    @field_validator("patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        return [compiles(p) for p in patterns]


class ModelGuardrailConfig(Strict):
    """A model of models.yaml (e.g. a Llama Guard engine) classifies the input;
    an answer matching ``block_when`` refuses the request."""

    kind: Literal["model"]
    model: str = Field(description="A public model name of models.yaml")
    block_when: str = Field("(?i)^\\s*unsafe", description="Regex on the judge's answer")
    max_tokens: int = Field(20, gt=0)
    on_error: Literal["fail_closed", "fail_open"] = Field(
        "fail_closed", description="Judge unreachable: refuse the request (its error), or allow"
    )

    @field_validator("block_when")
    @classmethod
    def _compile(cls, pattern: str) -> str:
        return compiles(pattern)


GuardrailConfig = Annotated[
    PiiGuardrailConfig | RegexGuardrailConfig | ModelGuardrailConfig,
    Field(discriminator="kind"),
]


class ModelGuardrails(Strict):
    """Guardrail names run on a model's requests (in order) and on its answers."""

    input: list[str] = Field(default_factory=list)
    output: list[str] = Field(default_factory=list)
