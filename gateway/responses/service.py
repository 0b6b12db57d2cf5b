"""The Responses API over chat completions: one turn's life, and stored responses.

``prepare`` turns a create request into a ``Turn``: it refuses what the
gateway cannot honour, rebuilds the history (``previous_response_id``: the
stored chain, or the connection's own responses in WebSocket mode;
``conversation``: its items), turns history and input into a chat completion
body, and fits it to the context window. The caller (a route) then admits and
calls the model, and gets the Response from ``respond`` (non-streaming) or a
``ResponseStream`` (streaming); ``save`` keeps it: in the shared store when
``store`` is true, in the connection's memory otherwise (WebSocket mode), and
appends its items to its conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.errors import InvalidRequestError, NotFoundError
from gateway.access.auth import Principal
from gateway.config.state import StateConfig
from gateway.observability.audit import keeps_content
from gateway.responses import output
from gateway.responses.context import ContextWindow
from gateway.responses.file_search import FileSearch, SearchCall, add_sources
from gateway.responses.ids import new_id
from gateway.responses.items import chat_messages, input_items
from gateway.responses.request import LOGPROBS, chat_body, refuse_unsupported
from gateway.responses.store import Store, StoredResponse, conversation_full
from gateway.responses.stream import ResponseStream
from gateway.responses.tools import ToolKinds
from gateway.routing.router import PublicModel, Router

Body = dict[str, Any]


@dataclass(slots=True, frozen=True)
class Caller:
    """Whose state it is: the key name or JWT subject, and whether it may store."""

    owner: str
    retains: bool

    @classmethod
    def of(cls, principal: Principal) -> Caller:
        return cls(principal.scope or "anonymous", keeps_content(principal.data_retention))


@dataclass(slots=True)
class Turn:
    """One response being made: what the backend gets and what will be kept."""

    caller: Caller
    body: Body  # the client's create body
    model: PublicModel
    chat: Body  # the chat completion request
    response: Body  # the Response in progress
    history: list[Body]  # the items before this turn (previous response or conversation)
    input: list[Body]  # this turn's input items
    keep: Store | None  # where it is kept (None: nowhere)
    parent: StoredResponse | None = None  # the previous response, in ``keep``
    conversation: str | None = None
    session_key: str | None = None  # routing affinity: one conversation, one engine
    dropped: int = 0  # messages truncation left out
    search: SearchCall | None = None  # file_search: its item and the sources given

    @property
    def with_logprobs(self) -> bool:
        return LOGPROBS in (self.body.get("include") or ())

    def stream(self) -> ResponseStream:
        return ResponseStream(self.response, self.with_logprobs, self.search)


def not_found(kind: str, object_id: str, param: str, code: str | None = None) -> NotFoundError:
    return NotFoundError(f"{kind} with id '{object_id}' not found.", param=param, code=code)


class ResponsesService:
    def __init__(
        self,
        store: Store,
        config: StateConfig,
        window: ContextWindow,
        kinds: ToolKinds,
        file_search: FileSearch | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.window = window
        self.kinds = kinds
        self.file_search = file_search  # None: no knowledge base, file_search is refused

    # ---- making a response ---------------------------------------------------

    async def prepare(
        self, router: Router, body: Body, caller: Caller, local: Store | None = None
    ) -> Turn:
        """``local``: the WebSocket connection's own store (``store: false`` turns)."""
        refuse_unsupported(body)
        store = body.get("store") is not False
        if store and not caller.retains:
            raise InvalidRequestError(
                "This caller's data_retention is none: responses cannot be stored. "
                "Set store to false.",
                param="store",
                code="data_retention",
            )
        model = router.resolve(body["model"])
        turn = Turn(caller, body, model, {}, {}, [], [], self.store if store else local)
        if store or body.get("conversation") is not None:
            self.store.check_writable()
        await self._rebuild(turn, local)
        turn.input = input_items(body.get("input"), self.kinds)
        if len(turn.history) + len(turn.input) >= self.config.max_items_per_conversation:
            param = "conversation" if turn.conversation else "previous_response_id"
            raise conversation_full(self.config.max_items_per_conversation, param)
        instructions = body.get("instructions")
        messages = [{"role": "system", "content": instructions}] if instructions else []
        messages += chat_messages(turn.history + turn.input, self.kinds)
        if len(messages) == (1 if instructions else 0) and body.get("generate") is not False:
            raise InvalidRequestError("Missing required parameter: 'input'.", param="input")
        turn.chat = chat_body(body, messages, self.kinds, stream=bool(body.get("stream")))
        if self.file_search is not None and body.get("generate") is not False:
            turn.search = await self.file_search.run(caller.owner, body, turn.input)
            if turn.search is not None:
                add_sources(turn.chat["messages"], turn.search)
        turn.response = output.echo(
            body,
            response_id=new_id("resp"),
            model=body["model"],
            store=store,
            conversation=turn.conversation,
        )
        if body.get("generate") is not False:
            truncation = body.get("truncation") or "disabled"
            keep = 1 if instructions or (turn.search and turn.search.results) else 0
            turn.dropped = await self.window.fit(model, turn.chat, truncation, keep)
        return turn

    async def _rebuild(self, turn: Turn, local: Store | None) -> None:
        body, owner = turn.body, turn.caller.owner
        previous = body.get("previous_response_id")
        conversation = body.get("conversation")
        if previous is not None:
            source: Store | None = local
            found = None if local is None else await local.chain(owner, previous)
            if found is None:
                source, found = self.store, await self.store.chain(owner, previous)
            if found is None:
                raise not_found(
                    "Previous response",
                    previous,
                    "previous_response_id",
                    "previous_response_not_found",
                )
            record, turn.history = found
            if record.conversation is not None:
                turn.history = await self._conversation_until(owner, record)
            else:
                turn.parent = record if source is turn.keep else None
            turn.session_key = record.thread
        elif conversation is not None:
            conversation_id = conversation if isinstance(conversation, str) else conversation["id"]
            if not turn.caller.retains:
                raise InvalidRequestError(
                    "This caller's data_retention is none: conversations cannot be stored.",
                    param="conversation",
                    code="data_retention",
                )
            items = await self.store.conversation_items(owner, conversation_id)
            if items is None:
                raise not_found("Conversation", conversation_id, "conversation")
            turn.history = items
            turn.conversation = turn.session_key = conversation_id

    async def _conversation_until(self, owner: str, record: StoredResponse) -> list[Body]:
        """A conversation's items up to a response of it (the context it ended)."""
        assert record.conversation is not None
        items = await self.store.conversation_items(owner, record.conversation) or []
        produced = record.body().get("output") or []
        if produced:
            last = produced[-1]["id"]
            for index, item in enumerate(items):
                if item.get("id") == last:
                    return items[: index + 1]
        return items

    def respond(self, turn: Turn, result: Body) -> Body:
        """The Response for a chat completion (non-streaming)."""
        choices = result.get("choices") or [{}]
        items = output.output_items(choices[0], turn.with_logprobs)
        if turn.search is not None:
            items = [turn.search.item, *output.cite(items, turn.search.citations())]
        usage = output.usage(result.get("usage"))
        finish = choices[0].get("finish_reason")
        turn.response = output.finished(turn.response, items, usage, finish)
        return turn.response

    async def save(self, turn: Turn) -> None:
        """Keep a finished turn (its Response and items) where it belongs."""
        response = turn.response
        items = turn.input + response["output"]
        if turn.keep is not None:
            history = [] if turn.conversation else turn.history
            start = len(history)
            record = StoredResponse(
                id=response["id"],
                response=response,
                start=start,
                input_end=start + len(turn.input),
                end=start + len(items),
                conversation=turn.conversation,
            )
            await turn.keep.put_response(turn.caller.owner, record, history, items, turn.parent)
        if turn.conversation is not None:
            added = await self.store.add_items(
                turn.caller.owner, turn.conversation, items, enforce=False
            )
            if not added:
                raise not_found("Conversation", turn.conversation, "conversation")

    # ---- stored responses ----------------------------------------------------

    async def _record(self, caller: Caller, response_id: str) -> StoredResponse:
        record = await self.store.get_response(caller.owner, response_id)
        if record is None:
            raise not_found("Response", response_id, "response_id")
        return record

    async def retrieve(self, caller: Caller, response_id: str) -> Body:
        return (await self._record(caller, response_id)).body()

    async def delete(self, caller: Caller, response_id: str) -> Body:
        if not await self.store.delete_response(caller.owner, response_id):
            raise not_found("Response", response_id, "response_id")
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    async def input_items(
        self, caller: Caller, response_id: str, after: str | None, limit: int, order: str
    ) -> Body:
        record = await self._record(caller, response_id)
        items = await self.store.thread(record, record.input_end)
        return page(items, after, limit, order)


def page(items: list[Body], after: str | None, limit: int, order: str) -> Body:
    """One page of a cursor-paginated list (``after`` is the last id seen)."""
    ordered = items if order == "asc" else items[::-1]
    start = 0
    if after is not None:
        for index, item in enumerate(ordered):
            if item.get("id") == after:
                start = index + 1
                break
        else:
            raise InvalidRequestError(
                f"Invalid value for 'after': no item with id '{after}' in this list.",
                param="after",
                code="invalid_value",
            )
    data = ordered[start : start + limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + limit < len(ordered),
    }
