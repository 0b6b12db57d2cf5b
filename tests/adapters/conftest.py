"""Fake vendor servers (Anthropic, Gemini, Azure OpenAI) and a failing
OpenAI-compatible upstream, each a real process on loopback, and one gateway
process in front of them all, configured as users configure it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.adapters.support import KEYS, FakeVendor
from tests.helpers import FakeUpstream, Gateway, free_port


@pytest.fixture(scope="session")
def vendor_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vendors")


@pytest.fixture(scope="session")
def anthropic_server(vendor_tmp: Path) -> Iterator[FakeVendor]:
    server = FakeVendor(vendor_tmp, "anthropic_server", "--api-key", KEYS["ANTHROPIC_TEST_KEY"])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gemini_server(vendor_tmp: Path) -> Iterator[FakeVendor]:
    server = FakeVendor(vendor_tmp, "gemini_server", "--api-key", KEYS["GEMINI_TEST_KEY"])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azure_server(vendor_tmp: Path) -> Iterator[FakeVendor]:
    server = FakeVendor(
        vendor_tmp,
        "azure_server",
        "--api-key",
        KEYS["AZURE_TEST_KEY"],
        "--deployments",
        "gpt-4o-prod,embed-prod,limited",
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def broken_upstream(vendor_tmp: Path) -> Iterator[FakeUpstream]:
    """An OpenAI-compatible upstream whose faults each failover test injects."""
    server = FakeUpstream(vendor_tmp, "broken")
    yield server
    server.stop()


def _target(provider: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "model": model, **extra}


def vendor_config(
    anthropic: FakeVendor, gemini: FakeVendor, azure: FakeVendor, broken: FakeUpstream
) -> dict[str, Any]:
    claude = {
        "kind": "anthropic",
        "base_url": anthropic.url + "/v1",
        "api_key": "${ANTHROPIC_TEST_KEY}",
        "default_max_tokens": 512,
    }
    gem = {"kind": "gemini", "base_url": gemini.url + "/v1beta", "api_key": "${GEMINI_TEST_KEY}"}
    az = {"kind": "azure", "base_url": azure.url, "api_key": "${AZURE_TEST_KEY}"}
    once = {"attempts": 1}
    # Models whose tests make their target fail or cool down get a target of their own.
    models: dict[str, Any] = {
        "claude": {"targets": [_target("claude", "claude-test")]},
        "claude-lenient": {"targets": [_target("claude-lenient", "claude-test")]},
        "claude-wrong-key": {"targets": [_target("claude-wrong-key", "claude-test")]},
        "claude-limited": {"targets": [_target("claude", "claude-limited")], "retries": once},
        "claude-overloaded": {"targets": [_target("claude", "claude-overloaded")], "retries": once},
        "claude-mid-stream": {"targets": [_target("claude", "claude-mid-stream")], "retries": once},
        "gemini": {"targets": [_target("gem", "gemini-test")]},
        "gemini-embed": {"targets": [_target("gem", "gemini-embedding-001")]},
        "gemini-wrong-key": {"targets": [_target("gem-wrong-key", "gemini-test")]},
        "gemini-limited": {"targets": [_target("gem", "gemini-limited")], "retries": once},
        "gemini-unavailable": {"targets": [_target("gem", "gemini-unavailable")], "retries": once},
        "gemini-truncated": {"targets": [_target("gem", "gemini-truncated")], "retries": once},
        "azure": {"targets": [_target("az", "gpt-4o-prod")]},
        "azure-embed": {"targets": [_target("az", "embed-prod")]},
        "azure-bearer": {"targets": [_target("az-bearer", "gpt-4o-prod")]},
        "azure-v1": {"targets": [_target("az-v1", "gpt-4o-prod")]},
        "azure-missing": {"targets": [_target("az", "no-such-deployment")]},
        "azure-limited": {"targets": [_target("az", "limited")], "retries": once},
        # Cross-kind failover: an OpenAI-compatible tier 1, Anthropic as tier 2.
        "failover": {
            "targets": [_target("broken", "m1"), _target("claude", "claude-test", tier=2)]
        },
        "failover-down": {
            "targets": [_target("nowhere", "m1"), _target("claude", "claude-test", tier=2)]
        },
        "failover-overloaded": {
            "targets": [_target("claude", "claude-busy"), _target("gem", "gemini-test", tier=2)]
        },
    }
    return {
        # These tests look at each failure as such: no circuit breaker in the way.
        "routing": {"breaker": {"failures": 1000, "error_ratio": None}},
        "providers": {
            "claude": claude,
            "claude-lenient": {**claude, "drop_unsupported": True},
            "claude-wrong-key": {**claude, "api_key": "sk-ant-not-the-key"},
            "gem": gem,
            "gem-wrong-key": {**gem, "api_key": "gm-not-the-key"},
            "az": az,
            "az-bearer": {**az, "auth": "bearer"},
            "az-v1": {**az, "api_version": "v1"},
            "broken": {"kind": "openai", "base_url": broken.base_url},
            "nowhere": {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1"},
        },
        "models": models,
    }


@pytest.fixture(scope="session")
def vendor_gateway(
    vendor_tmp: Path,
    anthropic_server: FakeVendor,
    gemini_server: FakeVendor,
    azure_server: FakeVendor,
    broken_upstream: FakeUpstream,
) -> Iterator[Gateway]:
    config = vendor_config(anthropic_server, gemini_server, azure_server, broken_upstream)
    server = Gateway(vendor_tmp, config, env=KEYS)
    yield server
    server.stop()


@pytest.fixture
def client(vendor_gateway: Gateway) -> OpenAI:
    return OpenAI(base_url=vendor_gateway.base_url, api_key="client-key", max_retries=0)


@pytest.fixture
def anthropic(anthropic_server: FakeVendor) -> Iterator[FakeVendor]:
    anthropic_server.reset()
    yield anthropic_server
    anthropic_server.reset()


@pytest.fixture
def gemini(gemini_server: FakeVendor) -> Iterator[FakeVendor]:
    gemini_server.reset()
    yield gemini_server
    gemini_server.reset()


@pytest.fixture
def azure(azure_server: FakeVendor) -> Iterator[FakeVendor]:
    azure_server.reset()
    yield azure_server
    azure_server.reset()


@pytest.fixture
def broken(broken_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    broken_upstream.reset()
    yield broken_upstream
    broken_upstream.reset()
