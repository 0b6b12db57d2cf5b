"""End to end: real vLLM engines killed mid-stream under load. Every stream
of a model with two engine targets completes: those on the killed engine
continue on the other (vLLM's continue_final_message), spliced into the same
response, with the token budget and usage adding up."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import openai
import pytest

from tests.engine_gateway import EngineGateway, ready_payload

pytestmark = pytest.mark.e2e

STREAMS = 8
# Long enough that no stream can finish between the barrier and the kill: a
# tiny engine makes thousands of tokens a second (the engines' window is 1,024).
MAX_TOKENS = 800
PAIR = ("engine/tiny-llama3", "engine/tiny-qwen2")  # llama-qwen-pair's targets


def test_streams_survive_an_engine_killed_under_them(engines_gateway: EngineGateway) -> None:
    gateway = engines_gateway.gateway
    client = openai.OpenAI(base_url=engines_gateway.base_url, api_key="unused", max_retries=0)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    targets: list[str] = []  # where each stream started (X-Gateway-Target)
    started = threading.Barrier(STREAMS + 1)

    def one() -> None:
        text, chunks, last, finish = "", 0, None, None
        try:
            with client.chat.completions.with_streaming_response.create(
                model="llama-qwen-pair",
                messages=[{"role": "user", "content": "Tell a long story."}],
                max_tokens=MAX_TOKENS,
                stream=True,
                stream_options={"include_usage": True},
                extra_body={"ignore_eos": True},  # vLLM's: the stream runs to max_tokens
            ) as response:
                target = response.headers["x-gateway-target"]
                for chunk in response.parse():
                    last = chunk
                    if chunk.choices and chunk.choices[0].delta.content:
                        text += chunk.choices[0].delta.content
                        chunks += 1
                        if chunks == 5:
                            targets.append(target)
                            started.wait(60)
                    if chunk.choices and chunk.choices[0].finish_reason:
                        finish = chunk.choices[0].finish_reason
            assert last is not None and last.usage is not None
            failover = getattr(last, "gateway_failover", None)
            results.append(
                {"target": target, "finish": finish, "usage": last.usage, "failover": failover}
            )
        except BaseException as exc:  # every failure is reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(STREAMS)]
    for thread in threads:
        thread.start()
    started.wait(120)  # every stream is under way
    # The engine serving the most streams is killed (the balancer chose where they went).
    victim = max(PAIR, key=lambda target: (targets.count(target), target == PAIR[0]))
    (survivor,) = [target for target in PAIR if target != victim]
    name = victim.removeprefix("engine/")
    before = ready_payload(gateway)["engines"][name]
    os.kill(before["pid"], signal.SIGKILL)
    for thread in threads:
        thread.join(300)
    assert errors == []
    assert len(results) == STREAMS
    moved = [r for r in results if r["failover"]]
    assert len(moved) == targets.count(victim) > 0, targets
    for result in results:
        assert result["finish"] == "length"
        # The budget held across the splice, and usage counts both engines' tokens.
        assert result["usage"].completion_tokens == MAX_TOKENS
    for result in moved:
        assert result["target"] == victim
        assert result["failover"]["from"] == victim
        assert result["failover"]["to"] == survivor
        assert 5 <= result["failover"]["after_tokens"] < MAX_TOKENS
    # Leave the session's engines as they were.
    deadline = time.monotonic() + 300
    while ready_payload(gateway)["engines"][name]["state"] != "ready":
        assert time.monotonic() < deadline, gateway.log()[-3000:]
        time.sleep(0.5)
