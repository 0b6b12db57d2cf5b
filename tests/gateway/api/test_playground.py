"""The playground in a real browser, against a real gateway and the fake
upstream: models listed, answers streamed as they arrive, stopped (the
upstream sees the disconnect), reasoning apart, Markdown rendered without
HTML, the conversation's history, API errors as their message, a key that
stays in the tab, and keyboard, screen-reader and phone use."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.fakes.openai_server import REASONING
from tests.gateway.api.conftest import MEMBER, RECORD_LENGTHS, Tab
from tests.helpers import FakeUpstream, Gateway, wait_for


def open_playground(tab: Tab, gateway: Gateway, path: str = "/") -> None:
    tab.page.goto(gateway.url + path)
    tab.page.wait_for_selector("#model option[value='chat']", state="attached")


def ask(tab: Tab, text: str) -> None:
    tab.page.fill("#prompt", text)
    tab.page.click("#send")
    tab.page.wait_for_selector("article.assistant:last-of-type[aria-busy='false']", timeout=30_000)


def last_answer(tab: Tab) -> str:
    return tab.text("article.assistant:last-of-type .answer")


def stat(tab: Tab, name: str) -> str:
    return tab.text(f"article.assistant:last-of-type [data-stat='{name}']")


def test_the_playground_loads_and_lists_the_models(gateway: Gateway, tab: Tab) -> None:
    open_playground(tab, gateway, "/playground")
    listed = tab.page.eval_on_selector_all("#model option", "options => options.map(o => o.value)")
    served = httpx.get(gateway.base_url + "/models", timeout=10).json()["data"]
    assert listed == sorted(model["id"] for model in served)
    assert tab.page.title() == "Playground · vllm-gateway"
    assert tab.page.is_hidden("#status")
    assert tab.errors == []
    # Everything came from the gateway itself: the page works offline.
    assert tab.asked and all(url.startswith(gateway.url + "/") for url in tab.asked)


def test_an_answer_streams_in_as_it_arrives(
    gateway: Gateway, upstream: FakeUpstream, tab: Tab
) -> None:
    open_playground(tab, gateway)
    tab.page.evaluate(RECORD_LENGTHS)
    upstream.reset()
    ask(tab, "[slow] one two three four five six")
    final = last_answer(tab)
    assert final == "alpha: [slow] one two three four five six"
    partial = {n for n in tab.page.evaluate("window.answerLengths") if 0 < n < len(final)}
    assert len(partial) >= 2, partial  # the answer grew on screen, word by word
    assert stat(tab, "target") == "alpha/m1"
    assert stat(tab, "time-to-first-token").endswith(("ms", "s"))
    assert float(stat(tab, "tokens-s")) > 0
    sent = upstream.requests()[-1]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    # The fake's usage: a quarter of the messages' JSON, a token a word.
    prompt, completion = len(orjson.dumps(sent["messages"])) // 4, len(final.split())
    assert stat(tab, "tokens") == f"{prompt} prompt, {completion} completion"
    assert stat(tab, "finish") == "stop"
    assert tab.errors == []


def test_stop_cancels_the_upstream_request(
    gateway: Gateway, upstream: FakeUpstream, tab: Tab
) -> None:
    open_playground(tab, gateway)
    upstream.reset()
    words = " ".join(f"w{i}" for i in range(60))  # 12 s at 0.2 s a word
    tab.page.fill("#prompt", f"[slow] {words}")
    tab.page.press("#prompt", "Enter")
    wait_for(lambda: len(last_answer(tab)) > 10, 10, "the answer started")
    assert tab.page.is_enabled("#stop") and tab.page.is_disabled("#send")
    tab.page.click("#stop")
    tab.page.wait_for_selector("article.assistant .stopped")
    events = wait_for(upstream.events, 5, "the upstream saw the client go away")
    assert events[0]["event"] == "cancelled"
    assert len(last_answer(tab)) < len(f"alpha: [slow] {words}")
    assert tab.page.is_disabled("#stop") and tab.page.is_enabled("#send")
    assert tab.errors == []


def test_reasoning_is_shown_apart_from_the_answer_and_collapses(gateway: Gateway, tab: Tab) -> None:
    open_playground(tab, gateway)
    ask(tab, "[think] Why?")
    box = tab.page.locator("article.assistant .reasoning")
    assert box.is_visible()
    assert tab.text("article.assistant .reasoning-text") == REASONING
    assert last_answer(tab) == "alpha: [think] Why?"  # the reasoning is not in the answer
    summary = box.locator("summary")
    summary.click()
    assert box.evaluate("node => node.open") is False
    summary.focus()
    tab.page.keyboard.press("Enter")  # and back, by keyboard
    assert box.evaluate("node => node.open") is True
    assert tab.errors == []


def test_markdown_is_rendered_and_html_in_answers_stays_text(gateway: Gateway, tab: Tab) -> None:
    open_playground(tab, gateway)
    tab.page.fill(
        "#prompt",
        "see:\n```python\nprint('<b>hi</b>')\n```\n**bold** and `code` "
        "<img src=x onerror=window.pwned=1> [bad](javascript:window.pwned=2) "
        "[good](https://example.com/a)\n\n| name | kind |\n|---|---|\n| *x* | y |\n\n- one\n- two",
    )
    tab.page.click("#send")
    tab.page.wait_for_selector("article.assistant[aria-busy='false']")
    answer = tab.page.locator("article.assistant .answer")
    assert answer.locator("pre code.language-python").text_content() == "print('<b>hi</b>')"
    assert answer.locator("strong").text_content() == "bold"
    assert answer.locator("p code").text_content() == "code"
    assert answer.locator("img, b, script").count() == 0
    assert "<img src=x onerror=window.pwned=1>" in (answer.text_content() or "")
    links = answer.locator("a")
    assert links.count() == 1 and links.get_attribute("href") == "https://example.com/a"
    assert links.get_attribute("rel") == "noopener noreferrer nofollow"
    assert tab.page.evaluate("window.pwned") is None
    cells = answer.locator("table th, table td").all_text_contents()
    assert cells == ["name", "kind", "x", "y"] and answer.locator("td em").count() == 1
    assert answer.locator("ul li").all_text_contents() == ["one", "two"]
    assert tab.errors == []


def test_the_conversation_goes_on_with_its_history_and_settings(
    gateway: Gateway, upstream: FakeUpstream, tab: Tab
) -> None:
    open_playground(tab, gateway)
    tab.page.fill("#system", "Be brief.")
    tab.page.fill("#temperature", "0.3")
    tab.page.fill("#max-tokens", "40")
    tab.page.click("details summary")
    tab.page.fill("#extra", '{"seed": 7, "top_p": 0.5}')
    upstream.reset()
    ask(tab, "first")
    ask(tab, "second")
    body: dict[str, Any] = upstream.requests()[-1]["body"]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "alpha: first"},
        {"role": "user", "content": "second"},
    ]
    assert (body["temperature"], body["max_tokens"], body["seed"], body["top_p"]) == (
        0.3,
        40,
        7,
        0.5,
    )
    tab.page.click("#new-chat")
    assert tab.page.locator("article").count() == 0
    ask(tab, "third")
    assert upstream.requests()[-1]["body"]["messages"][1:] == [{"role": "user", "content": "third"}]
    assert tab.errors == []


def test_bad_settings_are_named_before_anything_is_sent(
    gateway: Gateway, upstream: FakeUpstream, tab: Tab
) -> None:
    open_playground(tab, gateway)
    upstream.reset()
    tab.page.fill("#temperature", "3")
    tab.page.fill("#prompt", "hello")
    tab.page.click("#send")
    assert tab.text("#status") == "Temperature must be a number from 0 to 2."
    assert tab.page.evaluate("document.activeElement.id") == "temperature"
    assert tab.page.get_attribute("#temperature", "aria-invalid") == "true"
    assert upstream.requests() == []


def test_an_api_error_is_shown_as_its_message(gateway: Gateway, tab: Tab) -> None:
    open_playground(tab, gateway)
    tab.page.select_option("#model", "down")  # its only backend is unreachable
    with tab.page.expect_response("**/v1/chat/completions") as answered:
        ask(tab, "hello")
    response = answered.value
    message = response.json()["error"]["message"]
    assert response.status == 503 and message
    assert tab.text("#status") == message
    assert tab.text("article.assistant .error") == message
    # The browser reports the failed request itself; the page threw nothing.
    assert all("status of 503" in error for error in tab.errors), tab.errors


def test_a_wrong_key_shows_the_401_message_and_the_key_stays_in_the_tab(
    keyed_gateway: Gateway, tab: Tab
) -> None:
    tab.page.goto(keyed_gateway.url + "/")
    # The page lists the models after it loaded: the 401 comes back a moment later.
    no_key = "You didn't provide an API key."
    wait_for(lambda: tab.text("#status").startswith(no_key), 10, "the 401 message")
    tab.page.fill("#api-key", "sk-wrong")
    tab.page.press("#api-key", "Tab")
    wait_for(lambda: tab.text("#status") == "Incorrect API key provided.", 10, "the 401 message")
    tab.page.fill("#prompt", "hello")
    tab.page.click("#send")  # no model could be listed: the message stays, nothing is sent
    assert tab.text("#status") == "Incorrect API key provided."
    assert tab.page.locator("article").count() == 0
    assert all("status of 401" in error for error in tab.errors), tab.errors

    tab.page.fill("#api-key", MEMBER)
    tab.page.press("#api-key", "Tab")
    tab.page.wait_for_selector("#model option[value='chat']", state="attached")
    assert tab.page.is_hidden("#status")
    storage = tab.page.evaluate(
        "[sessionStorage.getItem('vllm-gateway.api-key'), localStorage.length, document.cookie]"
    )
    assert storage == [MEMBER, 0, ""]
    tab.page.reload()
    assert tab.page.input_value("#api-key") == MEMBER  # kept for the tab's life
    other = tab.page.context.browser.new_page()  # type: ignore[union-attr]
    other.goto(keyed_gateway.url + "/")
    assert other.input_value("#api-key") == ""  # never beyond it
    other.close()
    served = httpx.get(keyed_gateway.url + "/", timeout=10).text
    assert MEMBER not in served


def test_keyboard_screen_reader_and_phone(gateway: Gateway, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    tab = Tab(page)
    try:
        open_playground(tab, gateway)
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input, select, textarea, button')]
                 .filter(n => !(n.labels && n.labels.length) && !n.getAttribute('aria-label')
                              && !n.textContent.trim()).map(n => n.id)"""
        )
        assert unlabelled == []
        log = page.locator("#log")
        assert (log.get_attribute("role"), log.get_attribute("aria-live")) == ("log", "polite")
        page.keyboard.press("Tab")  # the skip link comes first
        assert page.evaluate("document.activeElement.textContent") == "Skip to the message box"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "prompt"
        for line in ("```", "x" * 300, "```"):
            page.keyboard.type(line)
            page.keyboard.press("Shift+Enter")  # a new line, not a send
        assert page.locator("article").count() == 0
        page.keyboard.press("Enter")
        page.wait_for_selector("article.assistant[aria-busy='false']")
        assert page.locator("article.assistant pre").count() == 1
        # Nothing is wider than the phone: the long code line scrolls inside its block.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        tab.screenshot("playground-phone")
    finally:
        context.close()
