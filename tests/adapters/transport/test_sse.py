"""SSE decoding as bytes arrive: events split at any byte, OpenAI chunks
until ``[DONE]``, errors that follow good chunks held back, and vLLM's
``reasoning`` field renamed ``reasoning_content``."""

from __future__ import annotations

import orjson
import pytest

from adapters.errors import UpstreamError
from adapters.openai import OpenAIChunks, rename_reasoning
from adapters.transport.sse import SSEEvents

BODY = (
    b": a comment\n"
    b"event: message\nid: 1\ndata: first\n\n"
    b"data: two\ndata: lines\n\n"
    b"data\n\n"
    b"data:no-space\n\n"
)
EVENTS = [b"first", b"two\nlines", b"", b"no-space"]


def _split_everywhere(body: bytes, events: SSEEvents) -> list[bytes]:
    return [event for i in range(len(body)) for event in events.feed(body[i : i + 1])]


def test_events_come_whole_however_the_body_is_cut() -> None:
    assert SSEEvents().feed(BODY) == EVENTS
    assert _split_everywhere(BODY, SSEEvents()) == EVENTS
    for cut in range(len(BODY)):
        events = SSEEvents()
        assert events.feed(BODY[:cut]) + events.feed(BODY[cut:]) == EVENTS


def test_crlf_and_cr_line_ends_even_split_between_reads() -> None:
    crlf = BODY.replace(b"\n", b"\r\n")
    assert _split_everywhere(crlf, SSEEvents()) == EVENTS
    assert SSEEvents().feed(BODY.replace(b"\n", b"\r")) == EVENTS


def test_an_event_cut_off_by_the_end_is_never_returned() -> None:
    events = SSEEvents()
    assert events.feed(b"data: whole\n\ndata: cut") == [b"whole"]
    assert events.feed(b"\n") == []  # its line is complete, the event is not


def _sse(*payloads: object) -> bytes:
    return b"".join(b"data: " + orjson.dumps(p) + b"\n\n" for p in payloads)


CHUNK = {"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"}}]}


def test_openai_chunks_stop_at_done() -> None:
    decoder = OpenAIChunks("upstream u", rename_reasoning=False)
    assert decoder.feed(_sse(CHUNK)[:10]) == []
    assert decoder.feed(_sse(CHUNK)[10:] + _sse(CHUNK)) == [CHUNK, CHUNK]
    assert not decoder.done
    assert decoder.feed(b"data: [DONE]\n\n" + _sse(CHUNK)) == []  # nothing after [DONE]
    assert decoder.done and decoder.failure is None


def test_a_body_ending_without_done_is_an_error() -> None:
    decoder = OpenAIChunks("upstream u", rename_reasoning=False)
    decoder.feed(_sse(CHUNK))
    with pytest.raises(UpstreamError, match="upstream u ended the stream without"):
        decoder.end()


def test_an_error_after_good_chunks_waits_until_they_are_sent() -> None:
    decoder = OpenAIChunks("upstream u", rename_reasoning=False)
    error = {"error": {"message": "engine died", "type": "server_error"}}
    assert decoder.feed(_sse(CHUNK, error)) == [CHUNK]
    assert isinstance(decoder.failure, UpstreamError)
    assert decoder.failure.message == "engine died"
    with pytest.raises(UpstreamError, match="engine died"):
        OpenAIChunks("upstream u", rename_reasoning=False).feed(_sse(error))


@pytest.mark.parametrize("event", [b"data: {broken\n\n", b"data: [1, 2]\n\n"])
def test_malformed_chunks_are_errors(event: bytes) -> None:
    with pytest.raises(UpstreamError, match="sent a stream event that is not"):
        OpenAIChunks("upstream u", rename_reasoning=False).feed(event)


def test_vllm_reasoning_is_renamed_in_stream_chunks() -> None:
    chunk = {"choices": [{"index": 0, "delta": {"reasoning": "hm"}}]}
    decoder = OpenAIChunks("engine e", rename_reasoning=True)
    assert decoder.feed(_sse(chunk)) == [
        {"choices": [{"index": 0, "delta": {"reasoning_content": "hm"}}]}
    ]


def test_a_message_gets_reasoning_content() -> None:
    result = {"choices": [{"message": {"content": "4", "reasoning": "2+2"}}]}
    assert rename_reasoning(result)["choices"][0]["message"] == {
        "content": "4",
        "reasoning_content": "2+2",
    }


def test_stream_deltas_get_reasoning_content() -> None:
    chunk = {"choices": [{"delta": {"reasoning": "hm"}}, {"delta": {"content": "x"}}]}
    deltas = [c["delta"] for c in rename_reasoning(chunk)["choices"]]
    assert deltas == [{"reasoning_content": "hm"}, {"content": "x"}]


def test_an_existing_reasoning_content_is_kept() -> None:
    result = {"choices": [{"message": {"reasoning": None, "reasoning_content": "kept"}}]}
    assert rename_reasoning(result)["choices"][0]["message"] == {"reasoning_content": "kept"}


def test_results_without_choices_pass_unchanged() -> None:
    usage_only = {"choices": [], "usage": {"total_tokens": 3}}
    assert rename_reasoning(dict(usage_only)) == usage_only


def test_a_line_that_never_ends_stops_at_the_event_limit() -> None:
    events = SSEEvents(max_event_bytes=1_000_000, what="upstream u")
    events.feed(b'data: {"a": "')
    piece = b"x" * 65536
    fed = 0
    with pytest.raises(UpstreamError, match="max_event_bytes"):
        for _ in range(1000):  # 64 MB offered; refused after about 1 MB
            events.feed(piece)
            fed += 1
    assert 14 <= fed <= 16


def test_a_long_event_cut_in_many_pieces_is_joined_once() -> None:
    events = SSEEvents()
    line = b"data: " + b"y" * 2_000_000 + b"\n\n"
    pieces = [line[i : i + 1000] for i in range(0, len(line), 1000)]
    found = [event for piece in pieces for event in events.feed(piece)]
    assert found == [b"y" * 2_000_000]


def test_data_lines_of_one_event_count_together_against_the_limit() -> None:
    events = SSEEvents(max_event_bytes=1000, what="upstream u")
    assert events.feed(b"data: " + b"a" * 600 + b"\n") == []
    with pytest.raises(UpstreamError, match="larger than the limit of 1000 bytes"):
        events.feed(b"data: " + b"b" * 600 + b"\n")


def test_an_event_over_the_limit_is_refused_even_when_it_arrives_whole() -> None:
    events = SSEEvents(max_event_bytes=1000, what="upstream u")
    assert events.feed(b"data: " + b"a" * 1000 + b"\n\n") == [b"a" * 1000]  # at the limit
    with pytest.raises(UpstreamError, match="larger than the limit of 1000 bytes"):
        events.feed(b"data: ok\n\ndata: " + b"a" * 600 + b"\ndata: " + b"b" * 600 + b"\n\n")


def test_an_event_spanning_many_reads_counts_every_line_once() -> None:
    events = SSEEvents(max_event_bytes=1000, what="upstream u")
    for _ in range(9):  # 9 x (100 + 1 newline) = 909 bytes of one event, in 9 reads
        assert events.feed(b"data: " + b"c" * 100 + b"\n") == []
    assert events.feed(b"data: " + b"d" * 50 + b"\n\n") == [
        b"\n".join([b"c" * 100] * 9 + [b"d" * 50])
    ]
    for _ in range(9):
        events.feed(b"data: " + b"c" * 100 + b"\n")
    with pytest.raises(UpstreamError, match="max_event_bytes"):
        events.feed(b"data: " + b"d" * 100 + b"\n")
