"""Where responses, their items and conversations are kept, per owner.

Every object belongs to the caller that made it (``owner``: its key name or
JWT subject); another owner's lookup finds nothing, so it gets a 404.

A response chain keeps its items in a *thread*: the items of every turn, in
order. A stored response points into it: ``thread[:start]`` is the history
it continued, ``thread[start:input_end]`` its own input, ``thread[input_end:end]``
its output. Continuing from the newest response of a thread appends to it
(rebuilding a conversation is one read, whatever its length); continuing from
an older one, or from a response kept elsewhere, starts a new thread with a
copy of the history. A conversation is an ordered list of item ids and the
items by id, so one item can be read or deleted alone.

``MemoryStore`` keeps all of it in this process, bounded: past
``max_objects`` responses and conversations the least recently used go, and
everything expires ``ttl`` seconds after its last write. The Redis store
(``gateway.responses.redis_store``) has the same interface.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson

from adapters.errors import InvalidRequestError

Body = dict[str, Any]


@dataclass(slots=True)
class StoredResponse:
    id: str
    response: Body | None  # the Response object, as retrieved (None: not parsed yet)
    start: int  # where its own input begins in the thread
    input_end: int
    end: int
    conversation: str | None = None
    thread: str = ""  # set by the store that keeps it
    home: object = field(default=None, compare=False)  # that store (never persisted)
    response_json: bytes | None = field(default=None, repr=False)  # ``response``, unparsed

    def body(self) -> Body:
        """The Response object (parsed when first needed: a rebuild never needs it)."""
        if self.response is None:
            assert self.response_json is not None
            self.response = dict(orjson.loads(self.response_json))
        return self.response

    def dump(self) -> bytes:
        """One line of the record's own fields, then the Response (never a newline in orjson's)."""
        meta = {
            "id": self.id,
            "start": self.start,
            "input_end": self.input_end,
            "end": self.end,
            "conversation": self.conversation,
            "thread": self.thread,
        }
        return orjson.dumps(meta) + b"\n" + (self.response_json or orjson.dumps(self.body()))

    @classmethod
    def load(cls, raw: bytes, home: object) -> StoredResponse:
        meta, _, response = raw.partition(b"\n")
        return cls(**orjson.loads(meta), response=None, home=home, response_json=response)


def conversation_full(limit: int, param: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"The conversation has reached the gateway's limit of {limit} items "
        "(state.max_items_per_conversation).",
        param=param,
        code="conversation_too_long",
    )


class Store(Protocol):
    def check_writable(self) -> None:
        """Raise (503) at once when a write is known to fail, before a model runs for it."""
        ...

    async def get_response(self, owner: str, response_id: str) -> StoredResponse | None: ...

    async def thread(self, record: StoredResponse, stop: int) -> list[Body]:
        """The first ``stop`` items of the record's thread."""
        ...

    async def chain(self, owner: str, response_id: str) -> tuple[StoredResponse, list[Body]] | None:
        """A response and the items of its whole context (``thread[:end]``), at once."""
        ...

    async def put_response(
        self,
        owner: str,
        record: StoredResponse,
        history: list[Body],
        items: list[Body],
        parent: StoredResponse | None,
    ) -> None:
        """Keep ``record`` and its new ``items`` (input then output), after
        ``history``: appended to ``parent``'s thread when that is where it
        ends, else in a new thread holding the history too."""
        ...

    async def delete_response(self, owner: str, response_id: str) -> bool: ...

    async def create_conversation(
        self, owner: str, conversation: Body, items: list[Body]
    ) -> None: ...

    async def get_conversation(self, owner: str, conversation_id: str) -> Body | None: ...

    async def update_conversation(self, owner: str, conversation: Body) -> bool: ...

    async def delete_conversation(self, owner: str, conversation_id: str) -> bool: ...

    async def conversation_items(self, owner: str, conversation_id: str) -> list[Body] | None:
        """Every item, oldest first; None when there is no such conversation."""
        ...

    async def add_items(
        self, owner: str, conversation_id: str, items: list[Body], *, enforce: bool
    ) -> bool:
        """Append items; False when there is no such conversation. With
        ``enforce``, refuse (400) to go past ``max_items_per_conversation``."""
        ...

    async def get_item(self, owner: str, conversation_id: str, item_id: str) -> Body | None: ...

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> bool: ...

    async def aclose(self) -> None: ...


def decode_items(raw: list[Any]) -> list[Body]:
    """Stored items (JSON bytes each), parsed in one call as one array."""
    return list(orjson.loads(b"[" + b",".join(raw) + b"]")) if raw else []


@dataclass(slots=True)
class _Thread:
    items: list[bytes]
    refs: int = 0


@dataclass(slots=True)
class _Conversation:
    meta: bytes
    items: OrderedDict[str, bytes]


class MemoryStore:
    """State in this process: LRU-bounded, expiring ``ttl`` seconds after the last write.

    Everything is kept as JSON bytes, as Redis keeps it: a caller can never
    change what is stored through an object it holds, memory is a few times
    smaller than the same objects in Python, and the garbage collector has
    nothing to walk through (bytes hold no references)."""

    def __init__(self, max_objects: int, ttl: float | None, max_items: int) -> None:
        self.max_objects = max_objects
        self.ttl = ttl
        self.max_items = max_items
        # (owner, id) -> (object, expiry); most recently used last.
        self._objects: OrderedDict[tuple[str, str], tuple[Any, float]] = OrderedDict()
        self._threads: dict[str, _Thread] = {}

    def check_writable(self) -> None:
        return None

    # ---- objects -------------------------------------------------------------

    def _get(self, owner: str, key: str) -> Any:
        found = self._objects.get((owner, key))
        if found is None:
            return None
        if found[1] < time.monotonic():
            self._drop((owner, key))
            return None
        self._objects.move_to_end((owner, key))
        return found[0]

    def _put(self, owner: str, key: str, value: Any) -> None:
        expiry = time.monotonic() + self.ttl if self.ttl is not None else float("inf")
        self._objects[(owner, key)] = (value, expiry)
        self._objects.move_to_end((owner, key))
        while len(self._objects) > self.max_objects:
            self._drop(next(iter(self._objects)))

    def _drop(self, key: tuple[str, str]) -> None:
        value, _ = self._objects.pop(key)
        if isinstance(value, StoredResponse):
            thread = self._threads.get(value.thread)
            if thread is not None:
                thread.refs -= 1
                if thread.refs <= 0:
                    del self._threads[value.thread]

    # ---- responses -----------------------------------------------------------

    async def get_response(self, owner: str, response_id: str) -> StoredResponse | None:
        found = self._get(owner, response_id)
        # A copy: parsing its Response must not leave objects in the store.
        return replace(found) if isinstance(found, StoredResponse) else None

    async def thread(self, record: StoredResponse, stop: int) -> list[Body]:
        thread = self._threads.get(record.thread)
        return [] if thread is None else decode_items(thread.items[:stop])

    async def chain(self, owner: str, response_id: str) -> tuple[StoredResponse, list[Body]] | None:
        record = await self.get_response(owner, response_id)
        return None if record is None else (record, await self.thread(record, record.end))

    async def put_response(
        self,
        owner: str,
        record: StoredResponse,
        history: list[Body],
        items: list[Body],
        parent: StoredResponse | None,
    ) -> None:
        encoded = [orjson.dumps(item) for item in items]
        thread = (
            None if parent is None or parent.home is not self else self._threads.get(parent.thread)
        )
        if thread is not None and parent is not None and len(thread.items) == parent.end:
            thread.items.extend(encoded)
            record.thread = parent.thread
        else:
            thread = _Thread([*(orjson.dumps(item) for item in history), *encoded])
            record.thread = record.id
            self._threads[record.id] = thread
        thread.refs += 1
        record.home = self
        kept = replace(record, response=None, response_json=orjson.dumps(record.body()))
        self._put(owner, record.id, kept)

    async def delete_response(self, owner: str, response_id: str) -> bool:
        record = await self.get_response(owner, response_id)
        if record is None:
            return False
        thread = self._threads.get(record.thread)
        if thread is not None and len(thread.items) == record.end:
            del thread.items[record.start :]  # its own items, when nothing came after them
        self._drop((owner, response_id))
        return True

    # ---- conversations -------------------------------------------------------

    def _conversation(self, owner: str, conversation_id: str) -> _Conversation | None:
        found = self._get(owner, conversation_id)
        return found if isinstance(found, _Conversation) else None

    async def create_conversation(self, owner: str, conversation: Body, items: list[Body]) -> None:
        stored = OrderedDict((item["id"], orjson.dumps(item)) for item in items)
        self._put(owner, conversation["id"], _Conversation(orjson.dumps(conversation), stored))

    async def get_conversation(self, owner: str, conversation_id: str) -> Body | None:
        found = self._conversation(owner, conversation_id)
        return None if found is None else dict(orjson.loads(found.meta))

    async def update_conversation(self, owner: str, conversation: Body) -> bool:
        found = self._conversation(owner, conversation["id"])
        if found is None:
            return False
        found.meta = orjson.dumps(conversation)
        self._put(owner, conversation["id"], found)
        return True

    async def delete_conversation(self, owner: str, conversation_id: str) -> bool:
        if self._conversation(owner, conversation_id) is None:
            return False
        self._drop((owner, conversation_id))
        return True

    async def conversation_items(self, owner: str, conversation_id: str) -> list[Body] | None:
        found = self._conversation(owner, conversation_id)
        return None if found is None else decode_items(list(found.items.values()))

    async def add_items(
        self, owner: str, conversation_id: str, items: list[Body], *, enforce: bool
    ) -> bool:
        found = self._conversation(owner, conversation_id)
        if found is None:
            return False
        if enforce and len(found.items) + len(items) > self.max_items:
            raise conversation_full(self.max_items, "items")
        found.items.update((item["id"], orjson.dumps(item)) for item in items)
        self._put(owner, conversation_id, found)
        return True

    async def get_item(self, owner: str, conversation_id: str, item_id: str) -> Body | None:
        found = self._conversation(owner, conversation_id)
        raw = None if found is None else found.items.get(item_id)
        return None if raw is None else dict(orjson.loads(raw))

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> bool:
        found = self._conversation(owner, conversation_id)
        return found is not None and found.items.pop(item_id, None) is not None

    async def aclose(self) -> None:
        self._objects.clear()
        self._threads.clear()
