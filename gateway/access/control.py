"""Access control for one running gateway: who may call which model, request
rules, and limits, in one call per request from the routes:

    async with state.access.admit(request, parsed, body) as grant:
        ...                               # call the model
        grant.record_usage(usage)         # completion tokens, charged on exit

Leaving the block (normally, by an error, or because the client went away)
charges the rest of the usage and releases the concurrency slots. The rules
of one config form a ``Policy``; a reload builds a new one off the event loop
and swaps it in one assignment, so in-flight requests keep the one they began
with and the limiter's counters carry over.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from adapters.errors import ConfigError, InvalidRequestError, PermissionDeniedError
from gateway.access.auth import PRINCIPAL, Authenticator, Principal
from gateway.access.limits import (
    WINDOW_SECONDS,
    Limiter,
    MemoryLimiter,
    Scope,
    Ticket,
    ratelimit_headers,
)
from gateway.access.redis_limits import RedisLimiter
from gateway.config.access import RequestRules
from gateway.config.loader import load_config
from gateway.config.schema import RELOADABLE_SECTIONS, GatewayConfig
from gateway.tokens import TokenCounter

# Another part of the config a reload applies (the routing table): it checks
# the new config (ConfigError refuses the whole reload) and returns its commit.
ReloadStep = Callable[[GatewayConfig], Callable[[], None]]

OPEN_WARNING = (
    "AUTH IS OFF: anyone who can reach this gateway can call every model without limits; "
    "add an 'auth:' section with keys or jwt to models.yaml"
)


class Policy:
    """The access rules of one config: keys, JWT, per-model limits, request rules."""

    def __init__(self, config: GatewayConfig, base_dir: Path) -> None:
        auth = config.auth
        self.config = config
        self.authenticator = Authenticator(auth, base_dir)
        self.rules = auth.requests if auth is not None else RequestRules()
        limits = auth.limits if auth is not None else {}
        self.model_scopes = {
            name: Scope(f"model:{name}", f"model '{name}'", quota) for name, quota in limits.items()
        }
        self.has_admin_keys = bool(auth and auth.admin_keys)
        rules = self.rules
        self.has_rules = rules.max_messages is not None or rules.max_n is not None

    def max_tokens_cap(self, principal: Principal, model: Scope | None) -> int | None:
        cap = self.rules.max_tokens
        for other in (
            principal.quota.max_tokens,
            None if model is None else model.quota.max_tokens,
        ):
            if other is not None and (cap is None or other < cap):
                cap = other
        return cap

    def enforce_rules(self, parsed: BaseModel, body: dict[str, Any], cap: int | None) -> None:
        """Request hygiene: refuse (400 naming the field) or clamp what is over a limit."""
        rules = self.rules
        messages = getattr(parsed, "messages", None)
        if rules.max_messages is not None and messages and len(messages) > rules.max_messages:
            raise InvalidRequestError(
                f"Too many messages: {len(messages)} given, at most {rules.max_messages} "
                "are allowed.",
                param="messages",
                code="too_many_messages",
            )
        if rules.max_n is not None:
            for name in ("n", "best_of"):
                value = body.get(name)
                if isinstance(value, int) and value > rules.max_n:
                    raise InvalidRequestError(
                        f"Invalid value for '{name}': {value} is above the limit of {rules.max_n}.",
                        param=name,
                        code="invalid_value",
                    )
        if cap is not None and hasattr(parsed, "max_tokens"):
            self._cap_max_tokens(body, cap)

    def _cap_max_tokens(self, body: dict[str, Any], cap: int) -> None:
        given = False
        for name in ("max_completion_tokens", "max_tokens"):
            value = body.get(name)
            if not isinstance(value, int):
                continue
            given = True
            if value > cap:
                if self.rules.max_tokens_policy == "refuse":
                    raise InvalidRequestError(
                        f"Invalid value for '{name}': {value} is above the limit of {cap}.",
                        param=name,
                        code="invalid_value",
                    )
                body[name] = cap
        if not given:
            body["max_tokens"] = cap  # the cap holds even when the client sets none


class Grant:
    """One admitted request; an async context manager that settles on exit."""

    __slots__ = ("_cost", "_limiter", "_scopes", "_ticket", "_tokens", "_used", "headers")

    def __init__(
        self, limiter: Limiter, scopes: list[Scope], cost: int, tokens: TokenCounter
    ) -> None:
        self._limiter = limiter
        self._scopes = scopes
        self._cost = cost
        self._tokens = tokens
        self._ticket: Ticket | None = None
        self._used: int | None = None
        self.headers: dict[str, str] = {}

    async def __aenter__(self) -> Grant:
        self._ticket = ticket = await self._limiter.acquire(self._scopes, self._cost)
        # OpenAI's headers for the caller's limits, else for the model's.
        for index, scope in enumerate(self._scopes):
            if scope.rated:
                self.headers = ratelimit_headers(scope, ticket.usages[index])
                break
        return self

    def record_usage(self, usage: Mapping[str, Any] | None) -> None:
        """The request's real usage; what exceeds the prompt charge is charged on exit."""
        if not usage:
            return
        total = usage.get("total_tokens")
        if not isinstance(total, int):
            total = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        self._used = total

    def record_stream(self, usage: Mapping[str, Any] | None, texts: list[str]) -> None:
        """A stream's usage, or an estimate from the text sent when it was cut short."""
        if usage:
            self.record_usage(usage)
        else:
            self._used = self._cost + self._tokens.count("".join(texts))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._ticket is not None:
            extra = 0 if self._used is None else max(0, self._used - self._cost)
            await self._limiter.settle(self._ticket, extra)


class FreeGrant:
    """What an uncounted request gets: no limits, no headers, nothing to settle."""

    headers: dict[str, str] = {}  # noqa: RUF012 - never mutated

    async def __aenter__(self) -> FreeGrant:
        return self

    def record_usage(self, usage: Mapping[str, Any] | None) -> None:
        return None

    def record_stream(self, usage: Mapping[str, Any] | None, texts: list[str]) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class AccessControl:
    """The current Policy, the limiter, and reloads; built and closed in the app lifespan."""

    def __init__(
        self, config: GatewayConfig, *, config_path: Path | None, tokens: TokenCounter, log: Any
    ) -> None:
        self._config_path = config_path
        self._base_dir = config_path.parent if config_path is not None else Path.cwd()
        self.policy = Policy(config, self._base_dir)
        self._tokens = tokens
        self._log = log
        self.limiter: Limiter
        if config.redis_url is not None:
            self.limiter = RedisLimiter(
                config.redis_url.get_secret_value(),
                fail_open=config.auth is None or config.auth.redis_failure == "fail_open",
                log=log,
            )
        else:
            self.limiter = MemoryLimiter()
        self._free = FreeGrant()
        self._reload_lock = asyncio.Lock()
        self.reload_steps: list[ReloadStep] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        if self.policy.authenticator.open:
            self._log.warning(OPEN_WARNING)
        if isinstance(self.limiter, RedisLimiter):
            self.limiter.start()
        if self._config_path is not None:
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
            except (NotImplementedError, RuntimeError, ValueError):
                self._log.info("SIGHUP reload unavailable here; use POST /v1/gateway/reload")

    async def aclose(self) -> None:
        if self._config_path is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in self._tasks:
            task.cancel()
        await self.limiter.aclose()

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return self.policy.authenticator.authenticate(headers)

    def admit(
        self, request: web.Request, parsed: BaseModel, body: dict[str, Any]
    ) -> Grant | FreeGrant:
        """Check the model is allowed and the request within its rules; the
        returned grant takes the rate and concurrency slots on entry."""
        principal: Principal = request[PRINCIPAL]
        model: str = getattr(parsed, "model")  # noqa: B009 - every request model has one
        if not principal.access.allows(model):
            raise PermissionDeniedError(
                f"The {principal.label} is not allowed to use the model '{model}'.",
                param="model",
                code="model_not_allowed",
            )
        policy = self.policy
        model_scope = policy.model_scopes.get(model)
        cap = policy.max_tokens_cap(principal, model_scope)
        if policy.has_rules or cap is not None:
            policy.enforce_rules(parsed, body, cap)
        key_scope = principal.limit_scope
        if key_scope is None:
            if model_scope is None:
                return self._free
            scopes = [model_scope]
        else:
            scopes = [key_scope] if model_scope is None else [key_scope, model_scope]
        # The prompt is counted only when a token limit will charge it (one
        # or two scopes: the first and the last are all of them).
        counted = scopes[0].quota.tpm is not None or scopes[-1].quota.tpm is not None
        cost = self._tokens.count_request(body) if counted else 0
        return Grant(self.limiter, scopes, cost, self._tokens)

    async def describe(self, principal: Principal) -> dict[str, Any]:
        described = principal.describe()
        usage = await self.limiter.usage(principal.scope) if principal.scope else None
        described["usage"] = {
            "requests": usage.requests if usage else 0,
            "tokens": usage.tokens if usage else 0,
            "in_flight": usage.in_flight if usage else 0,
            "window_seconds": WINDOW_SECONDS,
            "reset_seconds": round(usage.reset, 3) if usage else 0,
        }
        return described

    async def reload(self) -> Policy:
        """Re-read the config file and swap in its access rules and every reload
        step's part (the routing table), all or nothing."""
        if self._config_path is None:
            raise InvalidRequestError(
                "This gateway was not started from a config file, so it cannot reload.",
                code="reload_unavailable",
            )
        path = self._config_path
        async with self._reload_lock:
            try:
                policy = await asyncio.to_thread(lambda: Policy(load_config(path), self._base_dir))
                commits = [prepare(policy.config) for prepare in self.reload_steps]
            except (ConfigError, OSError, ValueError) as exc:
                problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
                self._log.warning(
                    "config reload failed; keeping the running config", problems=problems
                )
                raise InvalidRequestError(
                    "Config reload failed; the running config is unchanged: " + "; ".join(problems),
                    code="invalid_config",
                ) from exc
            self._note_restart_only_changes(policy.config)
            self.policy = policy
            for commit in commits:
                commit()
        self._log.info(
            "config reloaded",
            keys=len(policy.authenticator.keys),
            jwt=policy.authenticator.jwt is not None,
        )
        if policy.authenticator.open:
            self._log.warning(OPEN_WARNING)
        return policy

    def _note_restart_only_changes(self, new: GatewayConfig) -> None:
        old = self.policy.config
        stale = [
            name
            for name in GatewayConfig.model_fields
            if name not in RELOADABLE_SECTIONS and getattr(new, name) != getattr(old, name)
        ]
        if stale:
            self._log.warning("changed sections apply only on restart", sections=stale)

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload_logged())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_logged(self) -> None:
        with contextlib.suppress(InvalidRequestError):  # reload() logged its problems
            await self.reload()
