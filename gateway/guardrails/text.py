"""Text-level guardrails: a pii or regex guardrail applied to one text, whole
or streaming, and the placeholders mapped back for the caller.

``TextGuard.apply`` masks (or refuses) a whole text; ``TextGuard.stream``
gives a ``StreamStage`` whose ``feed`` returns what may be released of each
piece and ``flush`` the rest at the end. ``restore`` and ``StreamRestorer``
put the caller's own values back in place of their placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from operator import itemgetter
from typing import Final, Literal

from adapters.errors import ContentPolicyError
from gateway.config.guardrails import PiiGuardrailConfig, RegexGuardrailConfig
from gateway.guardrails.marks import Hints
from gateway.guardrails.pii import DETECTORS, HINTS
from gateway.guardrails.scan import CONTEXT_CHARS, Rule, Scanner, Span, Vault
from gateway.guardrails.texts import Where, param_name
from gateway.observability.logs import Finding

Stage = Literal["input", "output"]
PLACEHOLDER: Final = re.compile(r"\[[A-Z]+(?:_[A-Z]+)*_\d+\]")
# What may still become a placeholder at the end of a piece of text.
_OPEN_PLACEHOLDER: Final = re.compile(r"\[[A-Z_0-9]{0,40}\Z")
_LABEL: Final = itemgetter(2)  # a span's label, read in C


class Findings:
    """What the guardrails found in one request, a text's findings at a time
    (metrics and the audit log count them): never the values."""

    __slots__ = ("blocked", "found")

    def __init__(self) -> None:
        self.found: list[Finding] = []
        # The first block: (guardrail, stage, param). The blocked text is masked
        # all the same, so the audit log never holds what was refused.
        self.blocked: tuple[str, Stage, str | None] | None = None

    def refuse(self) -> None:
        """Raise the first block, if there was one."""
        if self.blocked is not None:
            raise blocked(*self.blocked)

    def add(self, guardrail: str, stage: Stage, action: str, kinds: Sequence[str]) -> None:
        """One text's findings: one kind per finding."""
        self.found.append((guardrail, stage, action, kinds))


def blocked(guardrail: str, stage: Stage, param: str | None = None) -> ContentPolicyError:
    what = "request" if stage == "input" else "response"
    return ContentPolicyError(
        f"The {what} was blocked by the guardrail '{guardrail}'.", param=param
    )


class TextGuard:
    """One pii or regex guardrail, compiled once per config."""

    def __init__(self, name: str, config: PiiGuardrailConfig | RegexGuardrailConfig) -> None:
        self.name = name
        self.action = config.action
        self.hold_chars = config.hold_chars
        if isinstance(config, PiiGuardrailConfig):
            # Only masked input is mapped back: a block's placeholders reach no one.
            self.restores = config.restore_in_response and config.action == "mask"
            hints: Hints | None = HINTS
            detectors = [d for kind in config.entities for d in DETECTORS[kind]]
            # ASCII classes: \d and \w need no Unicode lookups (all the kinds are ASCII).
            rules = [
                Rule.compile(
                    d.label,
                    d.pattern,
                    d.needs,
                    reach=d.reach,
                    valid=d.valid,
                    flags=re.ASCII,
                    spaceless=d.spaceless,
                    between_digits=d.between_digits,
                    min_digits=d.min_digits,
                    marked=d.marked,
                )
                for d in detectors
            ]
        else:
            self.restores = False
            hints = None
            rules = [Rule.compile("REDACTED", pattern) for pattern in config.patterns]
        self.scanner = Scanner(rules, hints)

    def apply(
        self, text: str, vault: Vault, findings: Findings, stage: Stage, where: Where | None = None
    ) -> str:
        """The text with its findings masked; a block is noted in ``findings``
        (``findings.refuse()`` raises it) and its text masked too."""
        spans = self.scanner.find(text)
        if not spans:
            return text
        return self._act(text, spans, vault, findings, stage, where)

    def apply_input(self, vault: Vault, findings: Findings, text: str, where: Where) -> str:
        """``apply`` on a request's text, its first arguments bound once per
        request (``functools.partial``: no Python frame in between)."""
        spans = self.scanner.find(text)
        if not spans:
            return text
        return self._act(text, spans, vault, findings, "input", where)

    def _act(
        self,
        text: str,
        spans: list[Span],
        vault: Vault,
        findings: Findings,
        stage: Stage,
        where: Where | None,
        start: int = 0,
    ) -> str:
        if self.action == "block" and findings.blocked is None:
            findings.blocked = (self.name, stage, None if where is None else param_name(where))
        # ``text`` with each span replaced by its placeholder (blocked text too,
        # so the audit log never holds what was refused).
        masked = vault.mask(text, spans, self.restores and stage == "input", start)
        findings.add(self.name, stage, self.action, list(map(_LABEL, spans)))
        return masked

    def stream(self, vault: Vault, findings: Findings) -> StreamStage:
        return StreamStage(self, vault, findings)


class StreamStage:
    """One guardrail over one streamed text (a choice's content)."""

    __slots__ = ("_context", "_findings", "_guard", "_pending", "_vault")

    def __init__(self, guard: TextGuard, vault: Vault, findings: Findings) -> None:
        self._guard = guard
        self._vault = vault
        self._findings = findings
        self._context = ""  # the end of what was released, for lookbehinds
        self._pending = ""  # held back: a finding may still be completing

    def feed(self, piece: str, final: bool = False) -> str:
        """What of the text so far may go to the client now (masked)."""
        if not piece and not final:
            return ""
        text = self._context + self._pending + piece
        start = len(self._context)
        spans, hold = self._guard.scanner.find_released(text, start, final, self._guard.hold_chars)
        released = text[start:hold]
        if spans:
            released = self._guard._act(
                text[:hold], spans, self._vault, self._findings, "output", None, start
            )
            self._findings.refuse()
        self._pending = text[hold:]
        self._context = text[max(0, hold - CONTEXT_CHARS) : hold]
        return released

    def flush(self) -> str:
        return self.feed("", final=True)


def restore(text: str, vault: Vault) -> str:
    """The caller's own values in place of their placeholders."""
    if "[" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: vault.restorable.get(m.group(), m.group()), text)


class StreamRestorer:
    """``restore`` on a stream: a placeholder split across pieces is held
    until it is whole (at most 42 characters)."""

    __slots__ = ("_pending", "_vault")

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._pending = ""

    def feed(self, piece: str) -> str:
        text = self._pending + piece if self._pending else piece
        cut = text.rfind("[")
        if cut >= 0 and _OPEN_PLACEHOLDER.match(text, cut):
            self._pending = text[cut:]
            text = text[:cut]
        else:
            self._pending = ""
        return restore(text, self._vault)

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return restore(text, self._vault)
