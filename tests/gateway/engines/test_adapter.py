"""vLLM's ``reasoning`` field reaches clients as ``reasoning_content``."""

from __future__ import annotations

from adapters.openai import rename_reasoning


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
