"""The stream state machine: chat chunks in, OpenAI's event grammar out."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.errors import UpstreamTimeoutError
from gateway.responses import output
from gateway.responses.stream import ResponseStream
from tests.gateway.responses.grammar import check_events, event_types

Body = dict[str, Any]


def delta(**fields: Any) -> Body:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


def finish(reason: str) -> Body:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}}


def run(chunks: list[Body], with_logprobs: bool = False) -> list[Body]:
    response = output.echo(
        {"model": "m"}, response_id="resp_x", model="m", store=True, conversation=None
    )
    stream = ResponseStream(response, with_logprobs)
    events = stream.start()
    for chunk in chunks:
        events += stream.feed(chunk)
    events += stream.close()
    stream.complete(output.usage(stream.chat_usage))
    events.append(stream.terminal())
    return events


def test_text_stream_follows_the_grammar() -> None:
    events = run(
        [delta(role="assistant", content="Hel"), delta(content="lo"), finish("stop"), USAGE]
    )
    response = check_events(events)
    assert event_types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == "Hello"
    assert response["usage"]["input_tokens"] == 7 and response["usage"]["output_tokens"] == 5


def test_reasoning_then_text_then_calls_are_items_in_order() -> None:
    events = run(
        [
            delta(role="assistant", reasoning_content="Let me"),
            delta(reasoning_content=" think"),
            delta(content="Calling."),
            delta(
                tool_calls=[
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"x"'},
                    }
                ]
            ),
            delta(tool_calls=[{"index": 0, "function": {"arguments": ": 1}"}}]),
            delta(
                tool_calls=[
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "g", "arguments": "{}"},
                    }
                ]
            ),
            finish("tool_calls"),
            USAGE,
        ]
    )
    response = check_events(events)
    kinds = [item["type"] for item in response["output"]]
    assert kinds == ["reasoning", "message", "function_call", "function_call"]
    reasoning, _, first, second = response["output"]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "Let me think"}]
    assert (first["call_id"], first["name"], first["arguments"]) == ("call_a", "f", '{"x": 1}')
    assert (second["call_id"], second["name"]) == ("call_b", "g")
    assert "response.reasoning_text.delta" in event_types(events)
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [e["name"] for e in done] == ["f", "g"]


def test_vllm_reasoning_field_counts_as_reasoning() -> None:
    response = check_events(run([delta(reasoning="hmm"), delta(content="ok"), finish("stop")]))
    assert [item["type"] for item in response["output"]] == ["reasoning", "message"]


def test_length_finish_is_incomplete() -> None:
    events = run([delta(content="cut"), finish("length")])
    response = check_events(events)
    assert events[-1]["type"] == "response.incomplete"
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"


def test_empty_answer_is_one_empty_message() -> None:
    response = check_events(run([finish("stop")]))
    assert response["output"][0]["type"] == "message"
    assert response["output"][0]["content"][0]["text"] == ""


def test_refusal_is_its_own_part() -> None:
    events = run([delta(content="I"), delta(refusal="cannot"), finish("stop")])
    response = check_events(events)
    parts = response["output"][0]["content"]
    assert [p["type"] for p in parts] == ["output_text", "refusal"]
    assert parts[1]["refusal"] == "cannot"
    assert "response.refusal.done" in event_types(events)


def test_logprobs_reach_deltas_and_the_done_text() -> None:
    logprobs = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.5,
                "bytes": [72, 105],
                "top_logprobs": [{"token": "Hi", "logprob": -0.5}],
            }
        ]
    }
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": logprobs}]}
    events = run([chunk, finish("stop")], with_logprobs=True)
    check_events(events)
    text_delta = next(e for e in events if e["type"] == "response.output_text.delta")
    assert text_delta["logprobs"][0]["token"] == "Hi"
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["logprobs"][0]["logprob"] == -0.5


def test_events_already_sent_are_never_changed() -> None:
    events = run([delta(content="a"), delta(content="b"), finish("stop")])
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["status"] == "in_progress" and added["item"]["content"] == []
    assert (
        events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    )


def test_failure_mid_stream_ends_with_error_then_failed() -> None:
    response = output.echo(
        {"model": "m"}, response_id="resp_y", model="m", store=False, conversation=None
    )
    stream = ResponseStream(response)
    events = stream.start() + stream.feed(delta(content="partial"))
    exc = UpstreamTimeoutError("The backend timed out.")
    events += stream.fail(*output.failure(exc))
    failed = check_events(events)
    error = events[-2]
    assert error["type"] == "error" and error["code"] == "upstream_timeout"
    assert error["error"]["message"] == "The backend timed out."
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert failed["output"][0]["status"] == "incomplete"


@pytest.mark.parametrize(
    "broken",
    [
        lambda e: e[:3] + e[4:],  # a gap in sequence numbers
        lambda e: [e[1], e[0], *e[2:]],  # in_progress before created
        lambda e: e[:-1],  # no terminal event
        lambda e: [*e, dict(e[-1], sequence_number=len(e))],  # something after the end
    ],
)
def test_the_grammar_rejects_broken_streams(broken: Any) -> None:
    events = run([delta(content="x"), finish("stop")])
    with pytest.raises(AssertionError):
        check_events(broken(events))


def test_the_grammar_rejects_a_done_text_that_is_not_its_deltas() -> None:
    events = run([delta(content="x"), finish("stop")])
    for event in events:
        if event["type"] == "response.output_text.done":
            event["text"] = "y"
    with pytest.raises(AssertionError):
        check_events(events)
