"""The model judge: a model of models.yaml (a Llama Guard engine, or any chat
model told what to answer) reads the request's conversation; an answer that
matches ``block_when`` refuses the request. The judge is called through the
router, so it gets the same retries, fallbacks and breakers as any request."""

from __future__ import annotations

import re
from typing import Any

from adapters.errors import GatewayError, UpstreamUnavailableError
from gateway.config.guardrails import ModelGuardrailConfig
from gateway.guardrails.texts import request_texts
from gateway.routing.model import Call
from gateway.routing.router import Router

_JUDGED_ROLES = frozenset({"system", "developer", "user", "assistant"})


def judge_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation as the judge reads it: text only, one turn per message
    (a completion prompt or embedding input is one user turn)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        turns = []
        for message in messages:
            if isinstance(message, dict) and message.get("role") in _JUDGED_ROLES:
                text = "\n".join(request_texts({"messages": [message]}))
                turns.append({"role": str(message["role"]), "content": text})
        if turns:
            return turns
    return [{"role": "user", "content": "\n".join(request_texts(body))}]


class ModelJudge:
    def __init__(self, name: str, config: ModelGuardrailConfig) -> None:
        self.name = name
        self.config = config
        self._block_when = re.compile(config.block_when)

    async def blocks(self, router: Router, body: dict[str, Any]) -> bool:
        """Whether the judge's verdict on ``body`` matches ``block_when``."""
        config = self.config
        call = Call(
            "chat",
            {
                "model": config.model,
                "messages": judge_messages(body),
                "max_tokens": config.max_tokens,
                "temperature": 0,
            },
        )
        try:
            result, _ = await router.call(router.resolve(config.model), call)
        except GatewayError as exc:
            if config.on_error == "fail_open":
                return False
            raise UpstreamUnavailableError(
                f"The guardrail '{self.name}' could not check the request: {exc.message}"
            ) from exc
        return bool(self._block_when.search(_verdict(result)))


def _verdict(result: dict[str, Any]) -> str:
    choices = result.get("choices") or [{}]
    message = choices[0].get("message") or {}
    content = message.get("content")
    return content if isinstance(content, str) else str(choices[0].get("text") or "")
