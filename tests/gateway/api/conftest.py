"""Fixtures of the API tests: a real browser for the pages, Debian's Chromium
(/usr/bin/chromium, installed by tests/setup.sh) driven by Playwright, never a
downloaded browser.

``browser`` is one headless Chromium per test module; ``tab`` is a fresh
browser context and page per test (its own sessionStorage) that records what
the page's console said and leaves a full-page screenshot under
``test-artifacts/screenshots/`` (git-ignored) when the test ends.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.gateway.conftest import sha256_hex
from tests.helpers import ROOT, FakeUpstream, Gateway

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
ADMIN = "sk-admin-pages-0123456789"
MEMBER = "sk-member-pages-0123456789"
ENGINE_SECRET = "sk-engine-flag-secret-42"
ENV_SECRET = "hf_engine_env_secret_77"
GATEWAY_ENV_SECRET = "sk-gateway-env-secret-99"
# Records every length the answer's text had, from the page itself: a poll
# from the test could miss short-lived states.
RECORD_LENGTHS = """() => {
  window.answerLengths = [];
  new MutationObserver(() => {
    const answers = document.querySelectorAll("article.assistant .answer");
    if (answers.length) window.answerLengths.push(answers[answers.length - 1].textContent.length);
  }).observe(document.getElementById("log"), {childList: true, subtree: true, characterData: true});
}"""
ENGINE_LOG = [
    "INFO non-default args: {'model': '/m', 'api_key': ['" + ENGINE_SECRET + "']}",
    f"usage: vllm serve --api-key {ENGINE_SECRET} --port 8000",
    f"ERROR the token {ENV_SECRET} was refused",
    f"ERROR the gateway's {GATEWAY_ENV_SECRET} leaked",
    "INFO an ordinary line",
]


@dataclass
class Tab:
    """A page, what its console reported (errors, uncaught exceptions) and
    every URL it asked for."""

    page: Page
    errors: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).first.text_content() or "")

    def throttle_downloads(self, bytes_per_second: int) -> None:
        """Deliver what the page downloads at this rate (Chromium's network
        emulation), so a stream arrives over seconds however fast its source."""
        session = self.page.context.new_cdp_session(self.page)
        session.send("Network.enable")
        conditions = {"offline": False, "latency": 0, "uploadThroughput": -1}
        session.send(
            "Network.emulateNetworkConditions",
            {**conditions, "downloadThroughput": bytes_per_second},
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: Playwright's sync API holds an event loop
    # while it runs, and the async tests of later modules need theirs.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    opened = Tab(page)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: opened.errors.append(f"uncaught: {error}"))
    page.on("request", lambda asked: opened.asked.append(asked.url))
    yield opened
    with contextlib.suppress(PlaywrightError):  # a crashed page has no picture to give
        opened.screenshot(re.sub(r"[^\w.-]+", "_", request.node.name))
    context.close()


@pytest.fixture(scope="session")
def keyed_gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream, faulty: FakeUpstream
) -> Iterator[Gateway]:
    """A gateway with a model key (MEMBER) and an admin key (ADMIN); a model on
    the faulty upstream whose breaker opens after two failures and stays open;
    and a local engine that fails before launching (its checksum cannot match)
    whose log already holds secrets (ENGINE_LOG)."""
    tmp = tmp_path_factory.mktemp("keyed")
    logs = tmp / "engine-logs"
    logs.mkdir()
    (logs / "guarded.log").write_text("\n".join(ENGINE_LOG) + "\n")
    config: dict[str, Any] = {
        "providers": {
            "alpha": {"kind": "openai", "base_url": upstream.base_url},
            "faulty": {"kind": "openai", "base_url": faulty.base_url},
        },
        "engines": {
            "guarded": {
                "model": str(tmp / "no-model"),
                "sha256": {str(tmp / "no-model" / "w.safetensors"): "0" * 64},
                "extra_args": ["--api-key", ENGINE_SECRET],
                "env": {"HF_TOKEN": ENV_SECRET},
                "max_restarts": 0,
            }
        },
        "models": {
            "chat": {"targets": [{"provider": "alpha", "model": "m1"}]},
            "flaky": {
                "targets": [{"provider": "faulty", "model": "m1"}],
                "retries": {"attempts": 1},
            },
            "guarded": {"targets": [{"engine": "guarded"}]},
        },
        "routing": {"breaker": {"failures": 2, "error_ratio": None, "cooldown": 600}},
        "auth": {
            "keys": [
                {"name": "member", "key_sha256": sha256_hex(MEMBER), "models": ["chat", "flaky"]}
            ],
            "admin_keys": [{"name": "ops", "key_sha256": sha256_hex(ADMIN)}],
        },
    }
    env = {"VLLM_GATEWAY_ENGINE_LOG_DIR": str(logs), "SOME_API_KEY": GATEWAY_ENV_SECRET}
    server = Gateway(tmp, config, env=env)
    yield server
    server.stop()
