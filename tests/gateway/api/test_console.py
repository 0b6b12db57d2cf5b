"""The console in a real browser, against real gateways and fake upstreams:
targets, models and routing, charts that follow the traffic, a breaker seen
opening, keys and engine logs for admins only, and never a secret."""

from __future__ import annotations

import threading
import time

import openai
import pytest

from tests.gateway.api.conftest import (
    ADMIN,
    ENGINE_SECRET,
    ENV_SECRET,
    GATEWAY_ENV_SECRET,
    MEMBER,
    Tab,
)
from tests.gateway.conftest import sha256_hex
from tests.helpers import FakeUpstream, Gateway, wait_for

HI = [{"role": "user", "content": "hi"}]


def open_console(tab: Tab, gateway: Gateway, key: str = "") -> None:
    """Open the console; with ``key``, as a tab that was given the admin key before."""
    if key:
        tab.page.add_init_script(f"sessionStorage.setItem('vllm-gateway.admin-key', {key!r})")
    tab.page.goto(gateway.url + "/console")
    tab.page.wait_for_selector("#updated:text('Updated')")


def cell(tab: Tab, table: str, key: str, field: str) -> str:
    return tab.text(f"#{table} tr[data-key='{key}'] td[data-field='{field}']")


def rate(tab: Tab, chart: str) -> float:
    shown = tab.text(f"#chart-{chart} .now")
    return 0.0 if shown == "no data" else float(shown)


def test_the_console_shows_targets_and_routing_without_errors(gateway: Gateway, tab: Tab) -> None:
    open_console(tab, gateway)
    tab.page.wait_for_selector("#targets tr[data-key='alpha/m1']")
    assert cell(tab, "targets", "alpha/m1", "state") == "closed"
    assert cell(tab, "models", "chat", "targets") == "alpha/m1: weight 1, tier 1, up"
    assert cell(tab, "models", "chat", "strategy") == "weighted"
    assert cell(tab, "models", "down", "ready") == "down"
    assert tab.text("#overall") == "degraded"  # the model "down" cannot be served
    assert tab.text("#engines-note") == "No local engines in this gateway process."
    assert tab.text("#keys-note") == "Enter an admin key to see them."
    assert tab.page.title() == "Console · vllm-gateway"
    assert tab.errors == []
    assert tab.asked and all(url.startswith(gateway.url + "/") for url in tab.asked)


def test_the_charts_follow_the_traffic(gateway: Gateway, tab: Tab) -> None:
    open_console(tab, gateway)
    client = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            stream = client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "a b c d"}], stream=True
            )
            for _ in stream:
                pass

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        for chart in ("requests", "tokens"):
            wait_for(lambda chart=chart: rate(tab, chart) > 0, 15, f"the {chart} chart's traffic")
        for chart in ("latency", "ttft"):
            wait_for(
                lambda chart=chart: tab.text(f"#chart-{chart} .now").endswith(" ms"), 15, chart
            )
    finally:
        stop.set()
        worker.join(30)
    # A line between the values of successive refreshes.
    line = "#chart-requests svg path.line"
    wait_for(lambda: "L" in (tab.page.get_attribute(line, "d") or ""), 10, "a line")
    label = tab.page.get_attribute("#chart-requests svg", "aria-label") or ""
    assert label.startswith("Requests per second: now ")
    assert tab.errors == []


def test_a_breaker_opening_shows(keyed_gateway: Gateway, flaky: FakeUpstream, tab: Tab) -> None:
    open_console(tab, keyed_gateway, ADMIN)
    tab.page.wait_for_selector("#targets tr[data-key='faulty/m1']")
    assert cell(tab, "targets", "faulty/m1", "state") == "closed"
    flaky.faults(fail_ratio=1.0)
    client = openai.OpenAI(base_url=keyed_gateway.base_url, api_key=MEMBER, max_retries=0)
    for _ in range(2):  # the breaker opens after two failures
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="flaky", messages=HI)
    wait_for(lambda: cell(tab, "targets", "faulty/m1", "state") == "open", 10, "the breaker open")
    assert "injected fault 500" in cell(tab, "targets", "faulty/m1", "last_error")
    assert cell(tab, "targets", "faulty/m1", "failures").startswith("2")
    tab.screenshot("console-breaker-open")
    assert tab.errors == []


def test_keys_and_engine_logs_are_for_admins_and_hold_no_secret(
    keyed_gateway: Gateway, tab: Tab
) -> None:
    open_console(tab, keyed_gateway)
    # Without a key: /ready still shows the engine; the rest says what it needs.
    tab.page.wait_for_selector("#engines tr[data-key='guarded']")
    wait_for(lambda: cell(tab, "engines", "guarded", "state") == "failed", 120, "engine failed")
    assert "checksum" in cell(tab, "engines", "guarded", "error") or "missing" in cell(
        tab, "engines", "guarded", "error"
    )
    assert tab.text("#targets-note").startswith("You didn't provide an API key.")
    assert tab.text("#engine-logs") == "Engine logs: Enter an admin key to see them."

    tab.page.fill("#admin-key", MEMBER)  # a model key is no admin key
    tab.page.press("#admin-key", "Tab")
    wait_for(lambda: tab.text("#keys-note") == "This endpoint needs an admin key.", 10, "403")

    tab.page.fill("#admin-key", ADMIN)
    tab.page.press("#admin-key", "Tab")
    tab.page.wait_for_selector("#keys tr[data-key='key:member']")
    assert cell(tab, "keys", "key:member", "models") == "chat, flaky"
    assert cell(tab, "keys", "admin:ops", "kind") == "admin"
    tab.page.click("#engine-logs details[data-engine='guarded'] summary")
    log = tab.page.locator("#engine-logs details[data-engine='guarded'] pre")
    wait_for(lambda: "an ordinary line" in (log.text_content() or ""), 10, "the log tail")
    assert "--api-key ***" in (log.text_content() or "")
    page = tab.page.content()
    for secret in (ADMIN, MEMBER, ENGINE_SECRET, ENV_SECRET, GATEWAY_ENV_SECRET):
        assert secret not in page
        assert sha256_hex(secret) not in page
    assert tab.page.evaluate("localStorage.length") == 0
    tab.screenshot("console-admin")
    # The refusals before the admin key came, reported by the browser; nothing thrown.
    assert all("status of 40" in error for error in tab.errors), tab.errors


def test_refresh_can_pause_and_tables_keep_the_focus(gateway: Gateway, tab: Tab) -> None:
    open_console(tab, gateway)
    tab.page.select_option("#every", "0")  # paused: nothing is asked any more
    time.sleep(0.5)
    asked: list[str] = []
    tab.page.on("request", lambda request: asked.append(request.url))
    time.sleep(3)
    assert asked == []
    tab.page.select_option("#every", "2")
    tab.page.focus("#targets")  # the scrollable table region, reached by keyboard
    time.sleep(2.5)
    assert any(url.endswith("/ready") for url in asked)
    assert tab.page.evaluate("document.activeElement.id") == "targets"
    assert tab.errors == []
