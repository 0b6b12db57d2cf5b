"""What the app holds for its lifetime, built in the lifespan and passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from adapters.base import Adapter
from gateway.access.control import AccessControl
from gateway.api.drain import Drain
from gateway.cache.service import ResponseCache
from gateway.config.schema import GatewayConfig
from gateway.engines.runtime import LocalEngines
from gateway.guardrails.service import Guardrails
from gateway.knowledge.build import KnowledgeBase
from gateway.observability.logs import AccessLog, AccessRecord
from gateway.observability.telemetry import Telemetry
from gateway.responses.build import ResponsesApi
from gateway.routing.reload import LiveRouting
from gateway.routing.router import Router
from gateway.tokens import TokenCounter


@dataclass(slots=True, eq=False)
class AppState:
    config: GatewayConfig  # as started; a reload swaps the router and access rules
    router: Router  # the routing table in force (LiveRouting swaps it on reload)
    tokens: TokenCounter
    access_log: AccessLog
    log: Any
    access: AccessControl  # keys, JWT, limits (gateway.access.control)
    telemetry: Telemetry  # metrics, audit log, tracing (gateway.observability.telemetry)
    responses: ResponsesApi  # Responses and Conversations APIs, their state (gateway.responses)
    adapters: dict[str, Adapter] = field(default_factory=dict)
    engines: LocalEngines | None = None  # local vLLM engines (gateway.engines)
    routing: LiveRouting | None = None  # owns ``router`` and its reload
    guardrails: Guardrails | None = None  # gateway.guardrails
    cache: ResponseCache | None = None  # gateway.cache
    knowledge: KnowledgeBase | None = None  # files, vector stores (gateway.knowledge)
    started: float = 0.0
    drain: Drain = field(default_factory=Drain)  # graceful shutdown (gateway.api.drain)


STATE = web.AppKey("state", AppState)
RECORD = "gateway.access_record"  # request-scoped AccessRecord
__all__ = ["RECORD", "STATE", "AccessRecord", "AppState"]
