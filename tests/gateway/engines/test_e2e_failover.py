"""End to end: real vLLM engines killed mid-stream under load. Every stream
of a model with two engine targets completes: those on the killed engine
continue on the other (vLLM's continue_final_message), spliced into the same
response, with the token budget and usage adding up."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
from typing import Any

import openai
import pytest

from tests.engine_gateway import EngineGateway, ready_payload

pytestmark = pytest.mark.e2e

STREAMS = 8
# Far more than the 5 tokens a stream has when its engine is killed, and room
# to continue in the engines' window of 1,024: the continuation is prompted with
# the answer so far, which a random model's text re-tokenizes to about 1.3 times
# its tokens (bytes that are no UTF-8 come back as U+FFFD, three bytes apiece).
MAX_TOKENS = 640
PAIR = ("engine/tiny-llama3", "engine/tiny-qwen2")  # llama-qwen-pair's targets
RUNNING = "vllm:num_requests_running"


def _running(base_url: str) -> float:
    """Requests the vLLM engine is running now (``vllm:num_requests_running``)."""
    metrics = base_url.removesuffix("/v1") + "/metrics"
    with urllib.request.urlopen(metrics, timeout=10) as response:
        lines = response.read().decode().splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith(RUNNING))


def test_streams_survive_an_engine_killed_under_them(engines_gateway: EngineGateway) -> None:
    gateway = engines_gateway.gateway
    client = openai.OpenAI(base_url=engines_gateway.base_url, api_key="unused", max_retries=0)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    # Once a stream has 5 chunks, the engine with the most requests still
    # running (its own metrics say) is killed. A tiny engine makes 640 tokens in
    # about a second and the clients read behind it, so the engine a client saw
    # first may already be done.
    first: list[str] = []
    fifth_chunk = threading.Event()
    lock = threading.Lock()

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
                            with lock:
                                if not first:
                                    first.append(target)
                                    fifth_chunk.set()
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
    assert fifth_chunk.wait(120), gateway.log()[-3000:]
    engines = ready_payload(gateway)["engines"]
    running = {target: _running(engines[target.removeprefix("engine/")]["url"]) for target in PAIR}
    victim = max(PAIR, key=lambda target: running[target])
    assert running[victim] > 0, running
    (survivor,) = [target for target in PAIR if target != victim]
    name = victim.removeprefix("engine/")
    os.kill(engines[name]["pid"], signal.SIGKILL)
    for thread in threads:
        thread.join(300)
    assert errors == []
    assert len(results) == STREAMS
    moved = [r for r in results if r["failover"]]
    # Streams cut by the kill moved; one the engine had finished, or had not
    # answered yet (sent to the other engine instead), did not. Either way every
    # stream ends with its whole budget (below): nothing was cut short.
    assert moved, [(r["target"], r["failover"]) for r in results]
    for result in results:
        assert result["finish"] == "length"
        # The budget held across the splice, and usage counts both engines'
        # tokens, each as its engine counted them (several can share a chunk).
        assert result["usage"].completion_tokens == MAX_TOKENS, result
    for result in moved:
        failover = result["failover"]
        assert result["target"] == victim
        assert failover["from"] == victim
        assert failover["to"] == survivor
        assert 0 <= failover["after_tokens"] < MAX_TOKENS
        # The survivor read the client's prompt and the answer so far.
        assert failover["prompt_tokens"] > failover["after_tokens"]
    # Leave the session's engines as they were.
    deadline = time.monotonic() + 300
    while ready_payload(gateway)["engines"][name]["state"] != "ready":
        assert time.monotonic() < deadline, gateway.log()[-3000:]
        time.sleep(0.5)
