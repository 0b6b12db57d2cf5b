"""Fixtures of the gateway tests: a real Redis and access-rule configs, and the
fake upstreams of the routing tests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FakeUpstream, RedisServer


@pytest.fixture(scope="session")
def redis_server(session_tmp: Path) -> Iterator[RedisServer]:
    """One redis-server for the session; tests that kill Redis start their own."""
    server = RedisServer(session_tmp)
    yield server
    server.stop()


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def auth_config(
    upstream: FakeUpstream, access_log: Path, auth: dict[str, Any], **top: Any
) -> dict[str, Any]:
    """A gateway in front of the fake upstream, with these access rules."""
    target = {"targets": [{"provider": "alpha", "model": "m1"}]}
    return {
        "server": {"access_log": str(access_log)},
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": target, "qwen-7b": target, "other": target, "limited": target},
        "auth": auth,
        **top,
    }


@pytest.fixture(scope="module")
def ups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FakeUpstream]]:
    """Three fake upstreams (a, b, c) per test module (router and resilience tests)."""
    tmp = tmp_path_factory.mktemp("upstreams")
    servers = {name: FakeUpstream(tmp, name) for name in ("a", "b", "c")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def up(ups: dict[str, FakeUpstream]) -> dict[str, FakeUpstream]:
    """The module's upstreams, with their requests, events and faults cleared."""
    for server in ups.values():
        server.reset()
    return ups
