"""Chat completion chunks in, Responses streaming events out, in OpenAI's order.

``ResponseStream`` is a state machine: ``start`` gives ``response.created``
and ``response.in_progress``; each ``feed(chunk)`` gives the events the chunk
completes; ``close`` ends the open item; ``complete`` makes the finished
Response and ``terminal`` announces it with ``response.completed`` (or
``response.incomplete``); ``fail`` gives ``error`` then ``response.failed``.
Every event carries the next ``sequence_number``.

One output item is open at a time, and each goes through its whole life
before the next begins, as OpenAI streams them:

    response.output_item.added
      reasoning:      content_part.added, reasoning_text.delta*, reasoning_text.done,
                      content_part.done
      message:        (content_part.added, output_text.delta*, output_text.done,
                      content_part.done)+       (refusal parts: refusal.delta/.done)
      function_call:  function_call_arguments.delta*, function_call_arguments.done
    response.output_item.done

A chunk's ``reasoning_content`` (DeepSeek-R1, or vLLM's ``reasoning``) opens a
reasoning item, ``content`` a message, each new ``tool_calls`` index a
function call. Events are fresh dicts: one already sent is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.responses import output
from gateway.responses.file_search import SearchCall
from gateway.responses.ids import new_id

Body = dict[str, Any]
_PART_TYPES = {"text": "output_text", "refusal": "refusal", "reasoning": "reasoning_text"}


@dataclass(slots=True)
class _Open:
    """The output item being streamed, and its open content part."""

    kind: str  # reasoning | message | function_call
    index: int  # output_index
    item: Body  # the item as output_item.added showed it
    parts: list[Body] = field(default_factory=list)  # finished parts (messages)
    part: str | None = None  # the open part: text | refusal | reasoning
    pieces: list[str] = field(default_factory=list)
    logprobs: list[Body] = field(default_factory=list)
    tool_index: int | None = None
    annotations: list[Body] = field(default_factory=list)  # of the open text part


class ResponseStream:
    def __init__(
        self, response: Body, with_logprobs: bool = False, search: SearchCall | None = None
    ) -> None:
        self.response = response  # the Response in progress (``output.echo``)
        self.with_logprobs = with_logprobs
        self.search = search  # file_search: done before the model ran
        self.citations = None if search is None else search.citations()
        self.sequence = 0
        self.output: list[Body] = []  # finished items
        self.chat_usage: Body | None = None
        self.finish_reason: str | None = None
        self.texts: list[str] = []  # what was generated, for estimates when usage is missing
        self._open: _Open | None = None

    def _event(self, kind: str, **fields: Any) -> Body:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    # ---- the life of a response ----------------------------------------------

    def start(self) -> list[Body]:
        events = [
            self._event("response.created", response=self.response),
            self._event("response.in_progress", response=self.response),
        ]
        if self.search is not None:
            events += self._searched(self.search.item)
        return events

    def _searched(self, item: Body) -> list[Body]:
        """The file_search_call's life, as OpenAI streams it."""
        index = len(self.output)
        where = {"item_id": item["id"], "output_index": index}
        self.output.append(item)
        return [
            self._event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "results": None},
            ),
            self._event("response.file_search_call.in_progress", **where),
            self._event("response.file_search_call.searching", **where),
            self._event("response.file_search_call.completed", **where),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def feed(self, chunk: Body) -> list[Body]:
        events: list[Body] = []
        if chunk.get("usage"):
            self.chat_usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                self._write(events, "reasoning", "reasoning", reasoning)
            if delta.get("content"):
                logprobs = choice.get("logprobs") if self.with_logprobs else None
                self._write(events, "message", "text", delta["content"], logprobs)
            if delta.get("refusal"):
                self._write(events, "message", "refusal", delta["refusal"])
            for call in delta.get("tool_calls") or ():
                self._call(events, call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def close(self) -> list[Body]:
        """End the open item; a response with no output gets an empty message,
        as a chat answer with no content is an empty message."""
        events: list[Body] = []
        answered = len(self.output) - (self.search is not None)
        if self._open is None and not answered:
            self._open_item(events, "message")
            self._open_part(events, "text")
        self._close_item(events)
        return events

    def complete(self, usage: Body) -> Body:
        """The finished Response (its output and usage); ``terminal`` announces it."""
        self.response = output.finished(self.response, self.output, usage, self.finish_reason)
        return self.response

    def terminal(self) -> Body:
        """``response.completed`` (or ``.incomplete``) with the whole Response."""
        kind = "completed" if self.response["status"] == "completed" else "incomplete"
        return self._event(f"response.{kind}", response=self.response)

    def fail(self, error: Body, response_error: Body) -> list[Body]:
        """``error`` (code, message, param, type, as the gateway raised it) then
        ``response.failed`` (whose error code is one of the Response's codes)."""
        events: list[Body] = []
        if self._open is not None:
            self._close_item(events, "incomplete")
        flat = {k: error.get(k) for k in ("code", "message", "param")}
        # The flat fields are the SDK's documented shape; the nested ``error``
        # is what OpenAI's own servers send (and what makes the SDKs raise).
        events.append(self._event("error", **flat, error=error))
        self.response = output.failed(self.response, self.output, response_error)
        events.append(self._event("response.failed", response=self.response))
        return events

    # ---- items and parts -----------------------------------------------------

    def _write(
        self, events: list[Body], kind: str, part: str, text: str, logprobs: Body | None = None
    ) -> None:
        current = self._open
        if current is None or current.kind != kind:
            self._close_item(events)
            current = self._open_item(events, kind)
        if current.part != part:
            self._close_part(events)
            self._open_part(events, part)
        self.texts.append(text)
        current.pieces.append(text)
        where = {"item_id": current.item["id"], "output_index": current.index}
        if part == "reasoning":
            events.append(
                self._event("response.reasoning_text.delta", **where, content_index=0, delta=text)
            )
        elif part == "refusal":
            events.append(
                self._event(
                    "response.refusal.delta", **where, content_index=len(current.parts), delta=text
                )
            )
        else:
            logged = output.logprobs_of(logprobs) if logprobs else []
            current.logprobs.extend(logged)
            added: list[Body] = []
            if self.citations is not None:
                text, added = self.citations.feed(text)
                current.pieces[-1] = text
            if text:
                events.append(
                    self._event(
                        "response.output_text.delta",
                        **where,
                        content_index=len(current.parts),
                        delta=text,
                        logprobs=logged,
                    )
                )
            self._annotated(events, current, added)

    def _call(self, events: list[Body], call: Body) -> None:
        function = call.get("function") or {}
        index = call.get("index", 0)
        current = self._open
        if current is None or current.kind != "function_call" or current.tool_index != index:
            self._close_item(events)
            current = self._open_item(
                events, "function_call", call.get("id") or new_id("call"), function.get("name")
            )
            current.tool_index = index
        elif function.get("name"):
            current.item["name"] += function["name"]
        arguments = function.get("arguments")
        if arguments:
            self.texts.append(arguments)
            current.pieces.append(arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=current.item["id"],
                    output_index=current.index,
                    delta=arguments,
                )
            )

    def _open_item(
        self, events: list[Body], kind: str, call_id: str = "", name: str | None = None
    ) -> _Open:
        index = len(self.output)
        if kind == "message":
            item = output.message_item(new_id("msg"), [], "in_progress")
        elif kind == "reasoning":
            item = output.reasoning_item(new_id("rs"), None, "in_progress")
        else:
            item = output.function_call_item(new_id("fc"), call_id, name or "", "", "in_progress")
        self._open = _Open(kind, index, item)
        events.append(self._event("response.output_item.added", output_index=index, item=item))
        return self._open

    def _open_part(self, events: list[Body], part: str) -> None:
        current = self._open
        assert current is not None
        current.part = part
        current.pieces = []
        current.logprobs = []
        events.append(
            self._event(
                "response.content_part.added",
                item_id=current.item["id"],
                output_index=current.index,
                content_index=len(current.parts),
                part=self._part(part, "", []),
            )
        )

    def _close_part(self, events: list[Body]) -> None:
        current = self._open
        if current is None or current.part is None:
            return
        where = {
            "item_id": current.item["id"],
            "output_index": current.index,
            "content_index": len(current.parts),
        }
        if current.part == "text" and self.citations is not None:
            rest, added = self.citations.finish()
            self.citations = None  # the first answer text is the one cited
            if rest:
                current.pieces.append(rest)
                delta = self._event("response.output_text.delta", **where, delta=rest, logprobs=[])
                events.append(delta)
            self._annotated(events, current, added)
        text = "".join(current.pieces)
        if current.part == "reasoning":
            events.append(self._event("response.reasoning_text.done", **where, text=text))
        elif current.part == "refusal":
            events.append(self._event("response.refusal.done", **where, refusal=text))
        else:
            events.append(
                self._event(
                    "response.output_text.done", **where, text=text, logprobs=current.logprobs
                )
            )
        part = self._part(current.part, text, current.logprobs, current.annotations)
        events.append(self._event("response.content_part.done", **where, part=part))
        current.parts.append(part)
        current.part = None
        current.annotations = []

    def _annotated(self, events: list[Body], current: _Open, added: list[Body]) -> None:
        for annotation in added:
            events.append(
                self._event(
                    "response.output_text.annotation.added",
                    item_id=current.item["id"],
                    output_index=current.index,
                    content_index=len(current.parts),
                    annotation_index=len(current.annotations),
                    annotation=annotation,
                )
            )
            current.annotations.append(annotation)

    def _close_item(self, events: list[Body], status: str | None = None) -> None:
        current = self._open
        if current is None:
            return
        if status is None:
            status = "incomplete" if self.finish_reason in output.INCOMPLETE else "completed"
        if current.kind == "function_call":
            arguments = "".join(current.pieces)
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=current.item["id"],
                    output_index=current.index,
                    name=current.item["name"],
                    arguments=arguments,
                )
            )
            item = {**current.item, "arguments": arguments, "status": status}
        else:
            self._close_part(events)
            item = {**current.item, "content": current.parts, "status": status}
        events.append(
            self._event("response.output_item.done", output_index=current.index, item=item)
        )
        self.output.append(item)
        self._open = None

    @staticmethod
    def _part(
        part: str, text: str, logprobs: list[Body], annotations: list[Body] | None = None
    ) -> Body:
        kind = _PART_TYPES[part]
        if kind == "output_text":
            return output.text_part(text, logprobs, annotations)
        if kind == "refusal":
            return {"type": "refusal", "refusal": text}
        return {"type": "reasoning_text", "text": text}
