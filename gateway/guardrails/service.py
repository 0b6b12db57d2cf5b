"""The guardrails service: what the routes (chat, completions, embeddings,
and any other endpoint) call.

    guard = state.guardrails.for_request(public_name, principal.guardrails)  # None: no guardrails
    checked = Checked()                                   # the findings, even when a block raises
    await guard.check_input(body, checked)                # masks in place, or raises
    guard.check_result(result, checked)                   # output guardrails (in place)
    guard.restore_result(result, checked)                 # the caller's values back
    guard.check_and_restore(result, checked)              # both, in one pass
    stream filters: guard.output_filter(checked), guard.restore_filter(checked)
    text level (other APIs): guard.output_text(text, checked), restore(text, checked.vault),
        guard.output_stream(checked) / guard.restore_stream(checked) (feed/flush)

Input guardrails run in the order the model lists them (a judge listed after
``pii`` reads the masked text); output guardrails run on the backend's
answer before the placeholders are mapped back, so a caller's own values are
never flagged and values the backend made up are never "restored". Blocks
raise ``ContentPolicyError`` (400 content_policy_violation) naming the
guardrail, never the text. The policies of a config are rebuilt on reload.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from gateway.config.guardrails import ModelGuardrailConfig, ModelGuardrails
from gateway.config.schema import GatewayConfig
from gateway.guardrails.chunks import Chain, ChoiceTextFilter
from gateway.guardrails.judge import ModelJudge
from gateway.guardrails.scan import Vault
from gateway.guardrails.text import Findings, StreamRestorer, TextGuard, blocked, restore
from gateway.guardrails.texts import rewrite_request, rewrite_result
from gateway.routing.router import Router

RouterGetter = Callable[[], Router]


class Checked:
    """One request's guardrail state: its placeholders and findings."""

    __slots__ = ("findings", "vault")

    def __init__(self) -> None:  # one per guarded request: no dataclass factories
        self.vault = Vault()
        self.findings = Findings()

    @property
    def restores(self) -> bool:
        return bool(self.vault.restorable)


class ModelGuard:
    """The guardrails attached to one public model."""

    def __init__(
        self, inputs: list[TextGuard | ModelJudge], outputs: list[TextGuard], router: RouterGetter
    ) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self._router = router

    async def check_input(self, body: dict[str, Any], checked: Checked | None = None) -> Checked:
        """Run the input guardrails on ``body`` (masking in place); findings go
        to ``checked`` (give one to keep them when a block raises)."""
        checked = checked if checked is not None else Checked()
        vault, findings = checked.vault, checked.findings
        for guard in self.inputs:
            if isinstance(guard, ModelJudge):
                if await guard.blocks(self._router(), body):
                    findings.add(guard.name, "input", "block", ("MODEL",))
                    raise blocked(guard.name, "input")
                continue
            rewrite_request(body, partial(guard.apply_input, vault, findings))
            findings.refuse()
        return checked

    def output_text(self, text: str, checked: Checked) -> str:
        """A whole answer text through the output guardrails (raises on a block)."""
        for guard in self.outputs:
            text = guard.apply(text, checked.vault, checked.findings, "output")
        checked.findings.refuse()
        return text

    def check_result(self, result: dict[str, Any], checked: Checked) -> None:
        if self.outputs:
            rewrite_result(result, lambda text: self.output_text(text, checked))

    @staticmethod
    def restore_result(result: dict[str, Any], checked: Checked) -> None:
        if checked.restores:
            rewrite_result(result, lambda text: restore(text, checked.vault))

    def check_and_restore(self, result: dict[str, Any], checked: Checked) -> None:
        """``check_result`` then ``restore_result``, in one pass over the answer
        (when nothing needs the answer in between, as the cache does)."""
        outputs, vault, findings = self.outputs, checked.vault, checked.findings
        if not outputs:
            self.restore_result(result, checked)
            return

        def through(text: str) -> str:
            for guard in outputs:
                text = guard.apply(text, vault, findings, "output")
            return restore(text, vault) if vault.restorable and "[" in text else text

        rewrite_result(result, through)
        if findings.blocked is not None:
            findings.refuse()

    def output_stream(self, checked: Checked) -> Chain:
        return Chain([g.stream(checked.vault, checked.findings) for g in self.outputs])

    @staticmethod
    def restore_stream(checked: Checked) -> StreamRestorer:
        return StreamRestorer(checked.vault)

    def output_filter(self, checked: Checked) -> ChoiceTextFilter | None:
        """Streamed chunks through the output guardrails (None: there are none)."""
        if not self.outputs:
            return None
        return ChoiceTextFilter(lambda: self.output_stream(checked))

    def restore_filter(self, checked: Checked) -> ChoiceTextFilter | None:
        """Streamed chunks with the caller's values back (None: nothing to restore)."""
        if not checked.restores:
            return None
        return ChoiceTextFilter(lambda: StreamRestorer(checked.vault))


Compiled = dict[str, TextGuard | ModelJudge]


def compile_guardrails(config: GatewayConfig) -> Compiled:
    compiled: Compiled = {}
    for name, guard_config in config.guardrails.items():
        if isinstance(guard_config, ModelGuardrailConfig):
            compiled[name] = ModelJudge(name, guard_config)
        else:
            compiled[name] = TextGuard(name, guard_config)
    return compiled


def _guard(
    compiled: Compiled, inputs: list[str], outputs: list[str], router: RouterGetter
) -> ModelGuard | None:
    if not inputs and not outputs:
        return None
    kept = [compiled[name] for name in outputs]
    text_outputs = [g for g in kept if isinstance(g, TextGuard)]
    return ModelGuard([compiled[name] for name in inputs], text_outputs, router)


class _Policies:
    """One config's guardrails: compiled once, attached per model, and per
    model and key for keys with guardrails of their own (built on first use)."""

    def __init__(self, config: GatewayConfig, router: RouterGetter) -> None:
        self.router = router
        self.compiled = compile_guardrails(config)
        self.attached = {
            name: model.guardrails for name, model in config.models.items() if model.guardrails
        }
        self.by_model: dict[str, ModelGuard] = {}
        for name, attached in self.attached.items():
            guard = _guard(self.compiled, attached.input, attached.output, router)
            if guard is not None:
                self.by_model[name] = guard
        self.by_key: dict[tuple[str, tuple[str, ...], tuple[str, ...]], ModelGuard | None] = {}

    def for_key(self, model: str, extra: ModelGuardrails) -> ModelGuard | None:
        key = (model, tuple(extra.input), tuple(extra.output))
        if key in self.by_key:
            return self.by_key[key]
        own = self.attached.get(model) or ModelGuardrails()
        inputs = [n for n in dict.fromkeys([*own.input, *extra.input]) if n in self.compiled]
        outputs = [n for n in dict.fromkeys([*own.output, *extra.output]) if n in self.compiled]
        guard = self.by_key[key] = _guard(self.compiled, inputs, outputs, self.router)
        return guard


class Guardrails:
    """The guardrails of the running config; built in the app lifespan."""

    def __init__(self, config: GatewayConfig, router: RouterGetter) -> None:
        self._router = router
        self._policies = _Policies(config, router)

    def for_model(self, model: str) -> ModelGuard | None:
        by_model = self._policies.by_model
        return by_model.get(model) if by_model else None

    def for_request(self, model: str, key_guardrails: ModelGuardrails | None) -> ModelGuard | None:
        """The model's guardrails, then those of the caller's key (if it has any)."""
        if key_guardrails is None:
            return self.for_model(model)
        return self._policies.for_key(model, key_guardrails)

    def prepare(self, config: GatewayConfig) -> Callable[[], None]:
        """A reload step: compile the new config's guardrails, swap them on commit."""
        policies = _Policies(config, self._router)

        def commit() -> None:
            self._policies = policies

        return commit
