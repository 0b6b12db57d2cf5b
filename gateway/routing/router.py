"""Where a request goes: public model name -> target -> adapter call.

For one request the router walks the model's fallback chain (the model, then
its ``fallbacks`` in order). Within a model it orders the usable targets
(breaker not open, engine ready, lowest tier first) with the model's
strategy, and tries them under one retry policy (tenacity): another target
at once when one is free, else exponential backoff with jitter or the
upstream's Retry-After; no more attempts past the limit, and none, nor any
pause, past the model's deadline, which also ends an attempt under way.

Streams are opened up to their first chunk inside the router, so a stream
that fails before its first byte is retried like any request; once a byte
has gone to the client it is never sent again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    DoSleep,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from adapters.base import Batch, Body, Partial
from adapters.errors import (
    ContextLengthError,
    GatewayError,
    ModelNotFoundError,
    RateLimitError,
    UpstreamUnavailableError,
)
from gateway.routing.failover import (
    OpenContinuation,
    ResumableStream,
    asks_chunk_usage,
    counted,
    resumable,
)
from gateway.routing.health import retry_after_seconds
from gateway.routing.model import Call, Operation, PublicModel
from gateway.routing.streams import BatchStream, TargetStream
from gateway.routing.target import Target

_STREAM_METHOD = {"chat": "chat_stream", "completions": "completions_stream"}
Result = TypeVar("Result")
# One attempt on a target, to be over by the deadline (the event loop's clock).
Send = Callable[[Target, float], Awaitable[Result]]


class Observer:
    """Hooks for what the router decides; the metrics module overrides them."""

    def retry(self, model: str, target: str, error: GatewayError) -> None: ...

    def fallback(self, model: str, to_model: str, reason: str) -> None: ...

    def failover(self, model: str, from_target: str, to_target: str) -> None: ...


class Router:
    def __init__(
        self,
        models: dict[str, PublicModel],
        count_prompt: Callable[[Body], int],
        observer: Observer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.models = models
        self._count_prompt = count_prompt
        self.observer = observer or Observer()
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

    def targets(self) -> dict[str, Target]:
        return {t.name: t for m in self.models.values() for t in m.targets}

    # ---- public entry points -------------------------------------------------

    async def call(self, model: PublicModel, call: Call) -> tuple[Body, Target]:
        async def send(target: Target, deadline: float) -> Body:
            method = getattr(target.adapter, call.operation)
            await target.health.acquire()
            started = time.perf_counter()
            try:
                body = target.prepare(call.body)
                result: Body = await method(body, target.timeouts, deadline)
            except GatewayError as exc:
                target.health.record_error(exc)
                raise
            finally:
                target.health.release()
            target.health.record_success(time.perf_counter() - started)
            return result

        return await self._through_chain(model, call, send, _filtered)

    async def open_stream(
        self, model: PublicModel, call: Call
    ) -> tuple[Batch, BatchStream, Target]:
        """Open a stream; return its first batch of chunks, the rest of it (which
        fails over mid-stream where the model allows it), and its target."""

        resuming = model.stream_failover and resumable(call.body)

        async def send(target: Target, deadline: float) -> tuple[Batch, TargetStream]:
            body = target.prepare(call.body)
            if resuming:
                body = counted(target, body)
            first, stream, _ = await self._open_on(target, call.operation, body, deadline)
            return first, stream

        (first, rest), target = await self._through_chain(model, call, send, lambda _: False)
        if not resuming:
            return first, rest, target
        continuer = self._continuer(model, call)
        keep = asks_chunk_usage(call.body)
        return first, ResumableStream(first, rest, target, continuer, keep), target

    async def _open_on(
        self, target: Target, operation: Operation, body: Body, deadline: float | None
    ) -> tuple[Batch, TargetStream, Target]:
        """One stream on one target, up to its first batch."""
        method = getattr(target.adapter, _STREAM_METHOD[operation])
        await target.health.acquire()
        started = time.perf_counter()
        chunks: AsyncIterator[Batch] = method(body, target.timeouts, deadline)
        try:
            first: Batch = await anext(chunks, [])
        except BaseException as exc:
            target.health.release()
            if isinstance(exc, GatewayError):
                target.health.record_error(exc)
            raise
        target.health.record_ttft(time.perf_counter() - started, time.monotonic())
        return first, TargetStream(target, chunks), target

    def _continuer(self, model: PublicModel, call: Call) -> OpenContinuation:
        """How a broken stream of ``call`` continues: on the best usable target
        not used yet that can continue an answer it did not start (any target,
        when no text was sent yet: it answers afresh)."""

        async def open_continuation(
            partial: Partial, used: list[Target]
        ) -> tuple[Batch, TargetStream, Target] | None:
            for target in self._candidates(model, call):
                if target in used:
                    continue
                prepared = target.prepare(call.body)
                body = (
                    prepared
                    if partial.empty
                    else target.adapter.continuation(call.operation, prepared, partial)
                )
                if body is None:
                    continue
                body = counted(target, body)
                model.balancer.sent(target, call)
                try:
                    opened = await self._open_on(target, call.operation, body, None)
                except GatewayError:
                    continue
                self.observer.failover(model.name, used[-1].name, target.name)
                return opened
            return None

        return open_continuation

    # ---- fallback chain ------------------------------------------------------

    async def _through_chain(
        self,
        model: PublicModel,
        call: Call,
        send: Send[Result],
        filtered: Callable[[Result], bool],
    ) -> tuple[Result, Target]:
        chain = self._chain(model, call)
        last_error: GatewayError | None = None
        for position, (candidate, reason) in enumerate(chain):
            if candidate is not model:
                call.fallbacks_taken += 1
                self.observer.fallback(model.name, candidate.name, reason)
            try:
                result, target = await self._with_retries(candidate, call, send)
            except GatewayError as exc:
                if not _falls_back(candidate, exc) or position + 1 == len(chain):
                    raise
                last_error = exc
                continue
            refused = filtered(result) and "content_filter" in candidate.config.fallback_on
            if not refused or position + 1 == len(chain):
                return result, target
        raise last_error or _unavailable(model)

    def _chain(self, model: PublicModel, call: Call) -> list[tuple[PublicModel, str]]:
        """The model, then its fallbacks, each with why it is reached; a model
        whose window is known to be too small for the prompt is skipped when a
        later one remains."""
        chain = [model] + [self.models[n] for n in model.config.fallbacks if n in self.models]
        if len(chain) == 1:
            return [(model, "")]
        kept: list[tuple[PublicModel, str]] = []
        reason = ""
        for index, candidate in enumerate(chain):
            window = candidate.context_window
            if (
                window is not None
                and "context_length" in candidate.config.fallback_on
                and index + 1 < len(chain)
                and self._needed_tokens(call) > window
            ):
                reason = "context_length"
                continue
            kept.append((candidate, reason or "error"))
            reason = ""
        return kept

    def _needed_tokens(self, call: Call) -> int:
        if call.prompt_tokens is None:
            call.prompt_tokens = self._count_prompt(call.body)
        body = call.body
        wanted = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        return call.prompt_tokens + (wanted if isinstance(wanted, int) else 0)

    # ---- retries within one model -------------------------------------------

    async def _with_retries(
        self, model: PublicModel, call: Call, send: Send[Result]
    ) -> tuple[Result, Target]:
        """Attempts on the model's targets until one succeeds or the retry
        policy gives up. Every attempt runs before the model's deadline (its
        transport is given the time left) and through one tenacity policy:
        once an attempt has failed, tenacity decides (retryable error,
        attempts left, a pause that ends before the deadline) and the pause
        is taken; a first attempt that succeeds costs the policy nothing."""
        policy = model.retries
        deadline = asyncio.get_running_loop().time() + policy.deadline
        started = time.monotonic()
        tried: list[Target] = []
        retrying: AsyncRetrying | None = None
        state: RetryCallState | None = None
        answered: GatewayError | None = None  # the last failure a backend itself gave
        while True:
            try:
                target = self._next_target(model, call, tried)
                try:
                    return await send(target, deadline), target
                except GatewayError as exc:
                    answered = exc
                    raise
            except GatewayError as exc:
                if retrying is None or state is None:
                    retrying = self._retrying(model, tried)
                    retrying.begin()
                    state = RetryCallState(retrying, None, (), {})
                    state.start_time = started
                state.set_exception((type(exc), exc, exc.__traceback__))
                try:
                    action = await retrying.iter(state)  # raises when the policy gives up
                except GatewayError as final:
                    # Out of attempts while every target rested: the client hears
                    # what the last backend said (its 429), not "none available".
                    raise (answered if final is not answered and answered else final) from None
            assert isinstance(action, DoSleep)
            await asyncio.sleep(float(action))
            state.prepare_for_next_attempt()

    def _retrying(self, model: PublicModel, tried: list[Target]) -> AsyncRetrying:
        """One request's retry policy, built at its first failure."""
        policy = model.retries

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            assert isinstance(error, GatewayError)
            return self._pause(model, tried, error, state.attempt_number)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            assert isinstance(error, GatewayError)
            # No target at all (none usable yet) is a retry of no target.
            self.observer.retry(model.name, tried[-1].name if tried else "", error)

        return AsyncRetrying(
            stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.deadline),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, GatewayError) and e.retryable),
            before_sleep=before_sleep,
            reraise=True,
        )

    def _next_target(self, model: PublicModel, call: Call, tried: list[Target]) -> Target:
        """The best usable target not yet tried; else the best one tried (a retry)."""
        ordered = self._candidates(model, call)
        if not ordered:
            raise _unavailable(model)
        fresh = [t for t in ordered if t not in tried]
        choices = fresh or ordered
        target = next((t for t in choices if t.health.has_capacity()), choices[0])
        tried.append(target)
        model.balancer.sent(target, call)
        return target

    def _candidates(self, model: PublicModel, call: Call) -> list[Target]:
        now = time.monotonic()
        usable = [t for t in model.targets if t.available() and t.health.usable(now)]
        if len(usable) <= 1:
            return usable
        by_tier: dict[int, list[Target]] = {}
        for target in usable:
            by_tier.setdefault(target.tier, []).append(target)
        ordered: list[Target] = []
        for tier in sorted(by_tier):
            ordered.extend(self._tier_order(model, by_tier[tier], call, now))
        return ordered

    @staticmethod
    def _tier_order(
        model: PublicModel, targets: list[Target], call: Call, now: float
    ) -> list[Target]:
        """The balancer's order, except that an engine replica reporting a full
        queue goes after every one with room."""
        limits = model.load_limits
        full = [t for t in targets if t.load is not None and t.load.full(limits, now)]
        if not full or len(full) == len(targets):
            return model.balancer.order(targets, call)
        roomy = [t for t in targets if t not in full]
        return [*model.balancer.order(roomy, call), *model.balancer.order(full, call)]

    def _pause(
        self, model: PublicModel, tried: list[Target], error: GatewayError, retry_number: int
    ) -> float:
        """No wait when another target is free to try; else backoff or Retry-After."""
        now = time.monotonic()
        if any(t not in tried and t.available() and t.health.usable(now) for t in model.targets):
            return 0.0
        policy = model.retries
        retry_after = retry_after_seconds(error)
        if retry_after is not None:
            if retry_after > policy.max_retry_after:
                raise error
            return retry_after + 0.01  # just past it, whatever the clock's resolution
        ceiling = min(policy.backoff_max, policy.backoff_base * 2 ** (retry_number - 1))
        return float(self._rng.uniform(ceiling / 2, ceiling))


def _falls_back(model: PublicModel, exc: GatewayError) -> bool:
    reasons = model.config.fallback_on
    if _is_context_length(exc):
        return "context_length" in reasons
    if isinstance(exc, RateLimitError):
        return "error" in reasons
    return exc.retryable and "error" in reasons


def _is_context_length(exc: GatewayError) -> bool:
    if isinstance(exc, ContextLengthError) or exc.code == "context_length_exceeded":
        return True
    return exc.status == 400 and "context length" in exc.message.lower()


def _filtered(result: Body) -> bool:
    """Every choice was stopped by the backend's content filter."""
    choices = result.get("choices") or []
    return bool(choices) and all(c.get("finish_reason") == "content_filter" for c in choices)


def _unavailable(model: PublicModel) -> UpstreamUnavailableError:
    """No target can take a request now. When one will again at a known time
    (a rested or broken target) the error says when and the request may wait
    for it; when none will (health checks failing, an engine down), it fails
    at once with ``Retry-After: 5``."""
    now = time.monotonic()
    waits = [t.health.usable_in(now) for t in model.targets if t.available()]
    known = [wait for wait in waits if wait is not None]
    return UpstreamUnavailableError(
        f"No backend of model '{model.name}' is available right now.",
        retry_after=min(known) if known else 5,
        retryable=bool(known),
    )
