"""The Conversations API: conversations and their items, kept per owner.

A conversation is an object (id, created_at, metadata) and an ordered list of
items; responses created with ``conversation`` read its items as their
history and append their input and output to it (``ResponsesService.save``).
Items given here are stored as the Responses API lists them (ids, statuses).
"""

from __future__ import annotations

import time
from typing import Any

from adapters.errors import InvalidRequestError
from gateway.responses.ids import new_id
from gateway.responses.items import input_items
from gateway.responses.service import Caller, not_found, page
from gateway.responses.store import Store
from gateway.responses.tools import ToolKinds

Body = dict[str, Any]


class ConversationsService:
    def __init__(self, store: Store, kinds: ToolKinds) -> None:
        self.store = store
        self.kinds = kinds

    def _items(self, items: list[Body] | None) -> list[Body]:
        return input_items(items or [], self.kinds)

    async def create(self, caller: Caller, body: Body) -> Body:
        if not caller.retains:
            raise InvalidRequestError(
                "This caller's data_retention is none: conversations cannot be stored.",
                param=None,
                code="data_retention",
            )
        items = self._items(body.get("items"))
        conversation = {
            "id": new_id("conv"),
            "object": "conversation",
            "created_at": int(time.time()),
            "metadata": body.get("metadata") or {},
        }
        await self.store.create_conversation(caller.owner, conversation, items)
        return conversation

    async def retrieve(self, caller: Caller, conversation_id: str) -> Body:
        found = await self.store.get_conversation(caller.owner, conversation_id)
        if found is None:
            raise not_found("Conversation", conversation_id, "conversation_id")
        return found

    async def update(self, caller: Caller, conversation_id: str, metadata: dict[str, str]) -> Body:
        conversation = {**await self.retrieve(caller, conversation_id), "metadata": metadata}
        if not await self.store.update_conversation(caller.owner, conversation):
            raise not_found("Conversation", conversation_id, "conversation_id")
        return conversation

    async def delete(self, caller: Caller, conversation_id: str) -> Body:
        if not await self.store.delete_conversation(caller.owner, conversation_id):
            raise not_found("Conversation", conversation_id, "conversation_id")
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def list_items(
        self, caller: Caller, conversation_id: str, after: str | None, limit: int, order: str
    ) -> Body:
        items = await self.store.conversation_items(caller.owner, conversation_id)
        if items is None:
            raise not_found("Conversation", conversation_id, "conversation_id")
        return page(items, after, limit, order)

    async def add_items(self, caller: Caller, conversation_id: str, items: list[Body]) -> Body:
        stored = self._items(items)
        if not await self.store.add_items(caller.owner, conversation_id, stored, enforce=True):
            raise not_found("Conversation", conversation_id, "conversation_id")
        return {
            "object": "list",
            "data": stored,
            "first_id": stored[0]["id"],
            "last_id": stored[-1]["id"],
            "has_more": False,
        }

    async def get_item(self, caller: Caller, conversation_id: str, item_id: str) -> Body:
        await self.retrieve(caller, conversation_id)
        item = await self.store.get_item(caller.owner, conversation_id, item_id)
        if item is None:
            raise not_found("Item", item_id, "item_id")
        return item

    async def delete_item(self, caller: Caller, conversation_id: str, item_id: str) -> Body:
        """OpenAI answers a deleted item with the conversation it was deleted from."""
        conversation = await self.retrieve(caller, conversation_id)
        if not await self.store.delete_item(caller.owner, conversation_id, item_id):
            raise not_found("Item", item_id, "item_id")
        return conversation
