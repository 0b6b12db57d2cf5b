"""Where a request goes: public model name -> target -> adapter call.

The router resolves the public name, picks a target, sends the request, and
fails over to another target when an attempt fails before anything reached
the client. Streams are opened up to their first chunk inside the router, so
a stream that fails before its first byte is retried like any request.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters.base import Adapter, Body
from gateway.config import ModelConfig, Timeouts
from gateway.errors import GatewayError, ModelNotFoundError, UpstreamUnavailableError

Operation = Literal["chat", "completions", "embeddings"]
_STREAM_METHOD = {"chat": "chat_stream", "completions": "completions_stream"}


@dataclass(slots=True, eq=False)
class Target:
    """One backend of a public model, as the router sees it."""

    name: str  # shown to operators: X-Gateway-Target, access log, metrics
    adapter: Adapter
    upstream_model: str
    weight: float = 1.0
    tier: int = 1
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Sampling defaults of an engine's family preset, applied when the client sets none.
    defaults: dict[str, Any] = field(default_factory=dict)
    # False while the target is known to be down (e.g. its engine is restarting).
    available: Callable[[], bool] = field(default=lambda: True)

    def prepare(self, body: Body) -> Body:
        """The body to send: the client's own object with the upstream model name."""
        prepared = {**self.defaults, **body} if self.defaults else dict(body)
        prepared["model"] = self.upstream_model
        return prepared


@dataclass(slots=True, eq=False)
class PublicModel:
    name: str
    targets: list[Target]
    config: ModelConfig
    created: int = 0


class Router:
    def __init__(self, models: dict[str, PublicModel], rng: random.Random | None = None) -> None:
        self.models = models
        self._rng = rng or random.Random()

    def resolve(self, name: str) -> PublicModel:
        model = self.models.get(name)
        if model is None:
            available = ", ".join(sorted(self.models)) or "none"
            raise ModelNotFoundError(
                f"The model '{name}' does not exist. Available models: {available}.",
                param="model",
            )
        return model

    def candidates(self, model: PublicModel) -> list[Target]:
        """Targets in the order to try them: the lowest tier with an available
        target first, weighted-random within a tier."""
        tiers: dict[int, list[Target]] = {}
        for target in model.targets:
            if target.available():
                tiers.setdefault(target.tier, []).append(target)
        ordered: list[Target] = []
        for tier in sorted(tiers):
            ordered.extend(self._weighted_order(tiers[tier]))
        return ordered

    def _weighted_order(self, targets: list[Target]) -> list[Target]:
        if len(targets) == 1:
            return targets
        pool = list(targets)
        ordered = []
        while pool:
            total = sum(t.weight for t in pool)
            if total <= 0:
                ordered.extend(pool)
                break
            point = self._rng.random() * total
            for index, target in enumerate(pool):
                point -= target.weight
                if point < 0:
                    ordered.append(pool.pop(index))
                    break
            else:
                ordered.append(pool.pop())
        return ordered

    async def call(
        self, model: PublicModel, operation: Operation, body: Body
    ) -> tuple[Body, Target]:
        last_error: GatewayError | None = None
        for target in self.candidates(model):
            method = getattr(target.adapter, operation)
            try:
                return await method(target.prepare(body), target.timeouts), target
            except GatewayError as exc:
                if not exc.retryable:
                    raise
                last_error = exc
        raise last_error or self._unavailable(model)

    async def open_stream(
        self, model: PublicModel, operation: Operation, body: Body
    ) -> tuple[Body, AsyncIterator[Body], Target]:
        """Open a stream and return its first chunk with the rest of it."""
        last_error: GatewayError | None = None
        for target in self.candidates(model):
            method = getattr(target.adapter, _STREAM_METHOD[operation])
            chunks: AsyncIterator[Body] = method(target.prepare(body), target.timeouts)
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                return {}, chunks, target
            except GatewayError as exc:
                if not exc.retryable:
                    raise
                last_error = exc
                continue
            return first, chunks, target
        raise last_error or self._unavailable(model)

    @staticmethod
    def _unavailable(model: PublicModel) -> UpstreamUnavailableError:
        return UpstreamUnavailableError(
            f"No backend of model '{model.name}' is available right now.", retry_after=5
        )
