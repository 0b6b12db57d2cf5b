"""OpenAI's grammar of Responses streaming events, as a checker.

From OpenAI's streaming-events reference (and the streams its API sends):

    stream   := response.created response.in_progress item* end
    item     := output_item.added(i) body output_item.done(i)       i = 0, 1, 2, ...
    body     := message:       part+
              | reasoning:     reasoning_part*
              | function_call: function_call_arguments.delta* function_call_arguments.done
    part     := content_part.added(j) (output_text.delta* output_text.done
                                       | refusal.delta* refusal.done) content_part.done(j)
    reasoning_part := content_part.added(j) reasoning_text.delta* reasoning_text.done
                      content_part.done(j)
    end      := response.completed | response.incomplete | error? response.failed

``sequence_number`` counts from 0 without a gap; every event inside an item
names that item's id and output_index; a ``.done`` event carries the
concatenation of its deltas; the terminal Response's ``output`` is the items of
the ``output_item.done`` events, in order, and every lifecycle event names the
same response id. A failed stream may end an item early (status incomplete).
"""

from __future__ import annotations

from typing import Any

Body = dict[str, Any]
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
_DELTAS = {
    "output_text": ("response.output_text.delta", "response.output_text.done", "text"),
    "refusal": ("response.refusal.delta", "response.refusal.done", "refusal"),
    "reasoning_text": ("response.reasoning_text.delta", "response.reasoning_text.done", "text"),
}


class Events:
    def __init__(self, events: list[Body]) -> None:
        self.events = events
        self.at = 0

    def peek(self) -> Body:
        assert self.at < len(self.events), "the stream ended before a terminal event"
        return self.events[self.at]

    def take(self, kind: str, **fields: Any) -> Body:
        event = self.peek()
        assert event["type"] == kind, f"event {self.at}: expected {kind}, got {event['type']}"
        for name, value in fields.items():
            assert event.get(name) == value, f"event {self.at} ({kind}): {name} != {value!r}"
        self.at += 1
        return event


def check_events(events: list[Body]) -> Body:
    """Assert ``events`` follow the grammar; the terminal Response."""
    numbers = [e.get("sequence_number") for e in events]
    assert numbers == list(range(len(events))), f"sequence numbers: {numbers}"
    stream = Events(events)
    response_id = stream.take("response.created")["response"]["id"]
    stream.take("response.in_progress")
    done: list[Body] = []
    while stream.peek()["type"] == "response.output_item.added":
        done.append(_item(stream, len(done)))
    if stream.peek()["type"] == "error":
        error = stream.take("error")
        assert error.get("message"), "an error event says what went wrong"
        assert stream.peek()["type"] == "response.failed", "error is followed by response.failed"
    final = stream.peek()
    assert final["type"] in TERMINAL, f"event {stream.at}: {final['type']} is not a terminal event"
    stream.take(final["type"])
    assert stream.at == len(events), f"{len(events) - stream.at} events after {final['type']}"
    response = final["response"]
    for event in events:
        if "response" in event:
            assert event["response"]["id"] == response_id, "the response id changed mid-stream"
    assert [item["id"] for item in response["output"]] == [item["id"] for item in done]
    if final["type"] != "response.failed":
        assert response["output"] == done, "the final output differs from the items streamed"
    return dict(response)


def _item(stream: Events, index: int) -> Body:
    added = stream.take("response.output_item.added", output_index=index)
    item = added["item"]
    where = {"item_id": item["id"], "output_index": index}
    if item["type"] == "function_call":
        arguments = "".join(
            stream.take("response.function_call_arguments.delta", **where)["delta"]
            for _ in _while(stream, "response.function_call_arguments.delta")
        )
        if stream.peek()["type"] == "response.function_call_arguments.done":
            done_args = stream.take("response.function_call_arguments.done", **where)
            assert done_args["arguments"] == arguments
    else:
        part_index = 0
        while stream.peek()["type"] == "response.content_part.added":
            _part(stream, where, part_index, item["type"])
            part_index += 1
    finished = stream.take("response.output_item.done", output_index=index)["item"]
    assert finished["id"] == item["id"] and finished["type"] == item["type"]
    assert finished.get("status") in (None, "completed", "incomplete")
    return dict(finished)


def _part(stream: Events, where: Body, index: int, item_type: str) -> None:
    added = stream.take("response.content_part.added", **where, content_index=index)
    kind = added["part"]["type"]
    assert kind in (("reasoning_text",) if item_type == "reasoning" else ("output_text", "refusal"))
    delta_type, done_type, field = _DELTAS[kind]
    text = "".join(
        stream.take(delta_type, **where, content_index=index)["delta"]
        for _ in _while(stream, delta_type)
    )
    done = stream.take(done_type, **where, content_index=index)
    assert done[field] == text, f"{done_type} says {done[field]!r}, the deltas {text!r}"
    part = stream.take("response.content_part.done", **where, content_index=index)["part"]
    assert part["type"] == kind and part[field] == text


def _while(stream: Events, kind: str) -> Any:
    while stream.peek()["type"] == kind:
        yield None


def event_types(events: list[Body]) -> list[str]:
    return [event["type"] for event in events]
