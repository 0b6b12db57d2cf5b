"""The playground and the console in a real browser with the demo's real vLLM
engines (the session's shared engine gateway): models listed, a real answer
streamed, DeepSeek-R1's reasoning apart from its answer, and an engine killed
with SIGKILL seen restarting and back."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import openai
import pytest
from tokenizers import Tokenizer

from tests.engine_gateway import TINY_DIR, EngineGateway, ready_payload
from tests.gateway.api.conftest import RECORD_LENGTHS, Tab
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

MODELS = [
    *["broken", "llama-qwen-pair", "minilm", "qwen2-with-backup"],
    *["tiny-deepseek-r1", "tiny-llama3", "tiny-qwen2"],
]  # sorted, as the playground lists them
HELLO = "Say hello."
ANSWERED = "article.assistant:last-of-type[aria-busy='false']"


def open_playground(tab: Tab, gateway: EngineGateway, model: str) -> None:
    tab.page.goto(gateway.gateway.url + "/")
    tab.page.wait_for_selector(f"#model option[value='{model}']", state="attached")
    tab.page.select_option("#model", model)


def set_request(tab: Tab, max_tokens: int, extra: dict[str, object], temperature: str = "") -> None:
    tab.page.fill("#max-tokens", str(max_tokens))
    tab.page.fill("#temperature", temperature)
    if not tab.page.is_visible("#extra"):
        tab.page.click("details summary")
    tab.page.fill("#extra", json.dumps(extra))


def test_the_playground_streams_a_real_engine_answer(
    engines_gateway: EngineGateway, tab: Tab
) -> None:
    open_playground(tab, engines_gateway, "tiny-qwen2")
    listed = tab.page.eval_on_selector_all("#model option", "options => options.map(o => o.value)")
    assert listed == MODELS
    # A tiny engine makes 400 tokens in about two seconds, and a browser short
    # of CPU meanwhile reads them all at once, later, and draws the answer in
    # one frame. Paced at 16 kB/s, the stream (about 75 kB) arrives over
    # seconds after the engine is done, and the page draws as it arrives.
    set_request(tab, 400, {"ignore_eos": True})
    tab.throttle_downloads(16_000)
    tab.page.evaluate(RECORD_LENGTHS)
    tab.page.fill("#prompt", HELLO)
    tab.page.press("#prompt", "Enter")
    tab.page.wait_for_selector(ANSWERED, timeout=120_000)
    final = tab.text("article.assistant .answer")
    partial = {n for n in tab.page.evaluate("window.answerLengths") if 0 < n < len(final)}
    assert len(partial) >= 2, (len(final), tab.page.evaluate("window.answerLengths"))
    meta = "article.assistant [data-stat='{}']"
    assert tab.text(meta.format("target")) == "engine/tiny-qwen2"
    assert tab.text(meta.format("tokens")).endswith(" prompt, 400 completion")
    assert float(tab.text(meta.format("tokens-s"))) > 0
    assert tab.text(meta.format("finish")) == "length"
    tab.screenshot("playground")
    assert tab.errors == []


def r1_token_id(token: str) -> str:
    tokenizer = Tokenizer.from_file(str(TINY_DIR / "tiny-deepseek-r1" / "tokenizer.json"))
    return str(tokenizer.token_to_id(token))


def test_the_reasoning_panel_shows_deepseek_r1_reasoning_apart(
    engines_gateway: EngineGateway, tab: Tab
) -> None:
    # Random weights rarely end their reasoning on their own: a bias towards
    # </think> (as in tests/gateway/engines) makes an answer follow it in most
    # seeds; the first seed whose answer has both is compared with the API's.
    bias = {r1_token_id("</think>"): 5, r1_token_id("<think>"): -100}
    open_playground(tab, engines_gateway, "tiny-deepseek-r1")
    for seed in range(1, 16):
        tab.page.click("#new-chat")
        set_request(tab, 40, {"seed": seed, "logit_bias": bias}, temperature="1")
        tab.page.fill("#prompt", HELLO)
        tab.page.press("#prompt", "Enter")
        tab.page.wait_for_selector(ANSWERED, timeout=120_000)
        reasoning = tab.text("article.assistant .reasoning-text")
        answer = tab.text("article.assistant .answer")
        if reasoning.strip() and answer.strip():
            break
    else:
        raise AssertionError("no seed gave both reasoning and an answer")
    assert tab.page.is_visible("article.assistant .reasoning")
    client = openai.OpenAI(base_url=engines_gateway.base_url, api_key="unused", max_retries=0)
    same = client.chat.completions.create(
        model="tiny-deepseek-r1",
        messages=[{"role": "user", "content": HELLO}],
        max_tokens=40,
        temperature=1,
        seed=seed,
        logit_bias=bias,
    )
    message = same.choices[0].message
    expected = getattr(message, "reasoning_content", None) or ""
    assert reasoning.replace("\ufffd", "") == expected.replace("\ufffd", "")
    assert message.content and reasoning not in answer
    tab.screenshot("playground-reasoning")
    assert tab.errors == []


def engine_row(tab: Tab, field: str) -> str:
    return tab.text(f"#engines tr[data-key='tiny-llama3'] td[data-field='{field}']")


def test_the_console_shows_an_engine_killed_and_restarted(
    engines_gateway: EngineGateway, tab: Tab
) -> None:
    gateway = engines_gateway.gateway
    tab.page.goto(gateway.url + "/console")
    wait_for(lambda: engine_row(tab, "state") == "ready", 30, "tiny-llama3 ready on screen")
    before = ready_payload(gateway)["engines"]["tiny-llama3"]
    assert engine_row(tab, "restarts") == str(before["restarts"])
    assert engine_row(tab, "pid") == str(before["pid"])
    # Some streamed traffic on another engine meanwhile, for the charts.
    client = openai.OpenAI(base_url=engines_gateway.base_url, api_key="unused", max_retries=0)
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            for _ in client.chat.completions.create(
                model="tiny-qwen2",
                messages=[{"role": "user", "content": HELLO}],
                max_tokens=16,
                stream=True,
            ):
                pass
            stop.wait(0.5)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        os.kill(before["pid"], signal.SIGKILL)
        states, phases, progressed = set(), set(), False
        deadline = time.monotonic() + 300
        while not (states and engine_row(tab, "state") == "ready"):
            assert time.monotonic() < deadline, gateway.log()[-3000:]
            state = engine_row(tab, "state")
            if state != "ready":
                states.add(state)
                phases.add(engine_row(tab, "phase"))
                bar = "#engines tr[data-key='tiny-llama3'] progress"
                if not progressed and tab.page.locator(bar).count():
                    progressed = True
                    tab.screenshot("console-engine-restarting")
            time.sleep(0.25)
    finally:
        stop.set()
        worker.join(60)
    assert "restarting" in states
    assert progressed, phases  # a loading phase was shown with its progress bar
    assert engine_row(tab, "restarts") == str(before["restarts"] + 1)
    assert engine_row(tab, "pid") not in ("", "—", str(before["pid"]))
    assert engine_row(tab, "phase").startswith("serving")
    for chart in ("tokens", "ttft"):
        shown = f"#chart-{chart} .now"
        wait_for(lambda shown=shown: tab.text(shown) not in ("", "no data", "0.00"), 15, chart)
    tab.screenshot("console")
    assert tab.errors == []
