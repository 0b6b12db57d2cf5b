"""Guardrails on text as it streams: split anywhere, the released text equals
the whole text's masking, nothing is held longer than the window, and
placeholders split across pieces are restored whole."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import ContentPolicyError
from gateway.config.guardrails import PiiGuardrailConfig, RegexGuardrailConfig
from gateway.guardrails.chunks import Chain, ChoiceTextFilter
from gateway.guardrails.scan import Vault
from gateway.guardrails.text import Findings, StreamRestorer, TextGuard, restore
from gateway.observability.logs import count_findings

PII = TextGuard("pii", PiiGuardrailConfig(kind="pii", restore_in_response=True))
POLICY = TextGuard(
    "policy", RegexGuardrailConfig(kind="regex", patterns=["(?i)internal[- ]only"], action="mask")
)
VALUES = [
    "jane.doe@example.com",
    "+1 (555) 123-4567",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "192.168.1.10",
    "2001:db8::7",
    "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789",
    "internal-only",
]
FILLER = [" ", ", ", ". ", " and ", "call ", "mail: ", "(", ")", "on 2024-01-15 ", "x", "12 "]
texts = st.lists(st.sampled_from(VALUES + FILLER), min_size=1, max_size=12).map("".join)


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


def masked_whole(guard: TextGuard, text: str) -> tuple[str, Findings]:
    findings = Findings()
    return guard.apply(text, Vault(), findings, "output"), findings


def masked_streamed(guard: TextGuard, pieces: list[str]) -> tuple[str, Findings]:
    findings = Findings()
    stream = guard.stream(Vault(), findings)
    return "".join(stream.feed(p) for p in pieces) + stream.flush(), findings


@settings(max_examples=300, deadline=None)
@given(texts, st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_a_stream_split_anywhere_is_masked_as_the_whole_text(text: str, cuts: list[int]) -> None:
    for guard in (PII, POLICY):
        whole, whole_findings = masked_whole(guard, text)
        streamed, stream_findings = masked_streamed(guard, split(text, cuts))
        assert streamed == whole
        assert count_findings(stream_findings.found) == count_findings(whole_findings.found)


@settings(max_examples=100, deadline=None)
@given(texts)
def test_every_single_split_position_gives_the_same_text(text: str) -> None:
    whole, _ = masked_whole(PII, text)
    for cut in range(len(text) + 1):
        assert masked_streamed(PII, [text[:cut], text[cut:]])[0] == whole


def test_text_is_held_only_while_a_finding_may_complete() -> None:
    stream = PII.stream(Vault(), Findings())
    assert stream.feed("Hello there, write to ") == "Hello there, write to "
    assert stream.feed("jane.d") == ""  # could become an e-mail address
    assert stream.feed("oe@example.com") == ""  # could still grow (.com.au)
    assert stream.feed(" today") == "[EMAIL_1] "  # the last word may still be an e-mail
    assert stream.flush() == "today"


def test_the_hold_window_is_bounded() -> None:
    guard = TextGuard(
        "wide", RegexGuardrailConfig(kind="regex", patterns=["a.*z"], action="mask", hold_chars=16)
    )
    stream = guard.stream(Vault(), Findings())
    released = "".join(stream.feed("a" + "b" * 9) for _ in range(10))
    assert len(released) >= 100 - 16  # everything but the window went out


def test_a_block_in_a_stream_raises_naming_the_guardrail() -> None:
    guard = TextGuard("no-secrets", RegexGuardrailConfig(kind="regex", patterns=["secret plan"]))
    stream = guard.stream(Vault(), Findings())
    assert stream.feed("the secr") == "the "
    with pytest.raises(ContentPolicyError) as blocked:
        stream.feed("et plan is")
    assert "'no-secrets'" in blocked.value.message and "plan" not in blocked.value.message
    assert blocked.value.code == "content_policy_violation"


@settings(max_examples=200, deadline=None)
@given(texts, st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_placeholders_split_anywhere_are_restored_whole(text: str, cuts: list[int]) -> None:
    vault = Vault()
    masked = PII.apply(text, vault, Findings(), "input")
    restorer = StreamRestorer(vault)
    restored = "".join(restorer.feed(p) for p in split(masked, cuts)) + restorer.flush()
    assert restored == restore(masked, vault) == text


def test_only_restorable_placeholders_are_restored() -> None:
    vault = Vault()
    masked = PII.apply("to ann@example.com", vault, Findings(), "input")
    made_up = PII.apply("and bob@example.org", vault, Findings(), "output")
    assert (masked, made_up) == ("to [EMAIL_1]", "and [EMAIL_2]")
    assert restore("[EMAIL_1] / [EMAIL_2] / [EMAIL_9]", vault) == (
        "ann@example.com / [EMAIL_2] / [EMAIL_9]"
    )


def test_chained_guardrails_and_chunks_release_at_the_finish_chunk() -> None:
    vault, findings = Vault(), Findings()
    chunk_filter = ChoiceTextFilter(lambda: Chain([PII.stream(vault, findings)]))

    def chunk(content: str | None, finish: str | None = None) -> dict[str, object]:
        delta = {} if content is None else {"content": content}
        return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = chunk_filter.batch([chunk("mail ann@exa"), chunk("mple.com")])
    assert [c["choices"][0]["delta"]["content"] for c in out] == ["mail ", ""]  # type: ignore[index]
    (last,) = chunk_filter.batch([chunk(None, "stop")])
    assert last["choices"][0]["delta"] == {"content": "[EMAIL_1]"}  # type: ignore[index]
    assert chunk_filter.close() == []


def test_tool_call_arguments_are_streams_of_their_own_released_by_call_index() -> None:
    chunk_filter = ChoiceTextFilter(lambda: PII.stream(Vault(), Findings()))

    def chunk(*calls: tuple[int, str], finish: str | None = None) -> dict[str, object]:
        tool_calls = [{"index": i, "function": {"arguments": a}} for i, a in calls]
        delta = {"tool_calls": tool_calls} if calls else {}
        return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def arguments(chunk: dict[str, object]) -> dict[int, str]:
        delta = chunk["choices"][0]["delta"]  # type: ignore[index]
        return {c["index"]: c["function"]["arguments"] for c in delta.get("tool_calls", [])}

    out = chunk_filter.batch(
        [chunk((0, '{"to": "ann@exa')), chunk((1, '{"tel": "+1 555')), chunk((0, 'mple.com"}'))]
    )
    assert [arguments(c) for c in out] == [{0: '{"to": "'}, {1: '{"tel": "'}, {0: '[EMAIL_1]"}'}]
    (last,) = chunk_filter.batch([chunk((1, ' 123 4567"}'), finish="tool_calls")])
    # The second call's number was held whole, then released with the finish chunk.
    assert arguments(last) == {1: '[PHONE_1]"}'}
    assert chunk_filter.close() == []


def test_arguments_held_at_the_end_join_the_finish_chunk_under_their_call() -> None:
    chunk_filter = ChoiceTextFilter(lambda: PII.stream(Vault(), Findings()))
    calls = [{"index": 2, "function": {"arguments": '{"to": "bob@example.org'}}]
    chunk_filter.batch([{"choices": [{"index": 0, "delta": {"tool_calls": calls}}]}])
    finish = {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
    chunk_filter.batch([{"choices": [finish]}])
    assert finish["delta"] == {"tool_calls": [{"index": 2, "function": {"arguments": "[EMAIL_1]"}}]}


def test_tool_call_entries_that_are_no_calls_are_passed_over_not_fatal() -> None:
    chunk_filter = ChoiceTextFilter(lambda: PII.stream(Vault(), Findings()))
    calls = ["junk", {"index": 0, "function": {"arguments": "mail bob@example.org"}}]
    chunk_filter.batch([{"choices": [{"index": 0, "delta": {"tool_calls": calls}}]}])
    finish = {"index": 0, "delta": {"tool_calls": ["junk"]}, "finish_reason": "tool_calls"}
    chunk_filter.batch([{"choices": [finish]}])
    held = {"index": 0, "function": {"arguments": "[EMAIL_1]"}}
    assert finish["delta"] == {"tool_calls": ["junk", held]}


def test_text_still_held_when_the_upstream_ends_leaves_in_a_chunk_of_its_own() -> None:
    chunk_filter = ChoiceTextFilter(lambda: PII.stream(Vault(), Findings()))
    chunk_filter.batch([{"id": "c", "model": "m", "choices": [{"index": 0, "text": "hi bob"}]}])
    (held,) = chunk_filter.close()
    assert held["id"] == "c" and held["choices"][0]["text"] == "bob"
