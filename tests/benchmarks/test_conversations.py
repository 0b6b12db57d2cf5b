"""The fleet benchmark's users, against the fake OpenAI server: turns sent at
once, or after a pause when the workload says users think."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import uvloop

from tests.benchmarks.conversations import Plan, run
from tests.helpers import FakeUpstream


def _one_user(upstream: FakeUpstream, think_seconds: float) -> dict[str, Any]:
    plan = Plan(
        url=upstream.base_url + "/chat/completions",
        model="fake-model",
        system="Answer briefly.",
        tag="pauses",
        users=1,
        turns=4,
        seconds=0.8,
        warmup_seconds=0,
        max_tokens=4,
        question_words=5,
        think_seconds=think_seconds,
    )
    return uvloop.run(run(plan))


def test_a_user_pauses_between_turns_only_when_told(tmp_path: Path) -> None:
    upstream = FakeUpstream(tmp_path)
    try:
        at_once = _one_user(upstream, 0.0)
        thinking = _one_user(upstream, 2.0)
    finally:
        upstream.stop()
    assert at_once["errors"] == thinking["errors"] == 0
    assert at_once["requests"] >= 2
    # The first answer comes well within the 0.8 s; the pause after it (1 to 3 s)
    # outlasts the window, so no second turn is sent.
    assert thinking["requests"] == 1
    assert thinking["completion_tokens"] > 0
