"""The Responses and Conversations APIs of one running gateway, built in the
app lifespan from the ``state:`` section (and ``redis_url``) and closed with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config.schema import GatewayConfig
from gateway.knowledge.build import KnowledgeBase
from gateway.responses.context import ContextWindow, engine_tokenizers
from gateway.responses.conversations import ConversationsService
from gateway.responses.file_search import FileSearch, FileSearchTools
from gateway.responses.redis_store import RedisStore, ResilientStore
from gateway.responses.service import ResponsesService
from gateway.responses.store import MemoryStore, Store
from gateway.responses.tools import ToolKinds, default_tool_kinds
from gateway.tokens import TokenCounter

# A WebSocket connection's own memory of its ``store: false`` responses.
CONNECTION_RESPONSES = 64


@dataclass(slots=True, eq=False)
class ResponsesApi:
    responses: ResponsesService
    conversations: ConversationsService
    store: Store
    window: ContextWindow

    def connection_store(self) -> MemoryStore:
        """What one WebSocket connection remembers (its responses, not stored)."""
        return MemoryStore(
            CONNECTION_RESPONSES, None, self.responses.config.max_items_per_conversation
        )

    async def aclose(self) -> None:
        await self.window.aclose()
        await self.store.aclose()


def build_responses(
    config: GatewayConfig, tokens: TokenCounter, log: Any, knowledge: KnowledgeBase | None = None
) -> ResponsesApi:
    """``knowledge``: the knowledge base, which turns the ``file_search`` tool on."""
    state = config.state
    memory = MemoryStore(
        state.memory_max_objects, state.ttl_seconds, state.max_items_per_conversation
    )
    store: Store = memory
    if state.backend == "redis" and config.redis_url is not None:
        redis = RedisStore(
            config.redis_url.get_secret_value(), state.ttl_seconds, state.max_items_per_conversation
        )
        fail_open = config.auth is None or config.auth.redis_failure == "fail_open"
        store = ResilientStore(redis, memory, fail_open=fail_open, log=log)
    kinds = default_tool_kinds()
    file_search = None
    if knowledge is not None:
        kinds = ToolKinds([*kinds.by_tool.values(), FileSearchTools()])
        file_search = FileSearch(knowledge.search)
    window = ContextWindow(tokens, engine_tokenizers(config.providers))
    return ResponsesApi(
        ResponsesService(store, state, window, kinds, file_search),
        ConversationsService(store, kinds),
        store,
        window,
    )
