"""Fixtures for the access-control tests: a real Redis, and gateway configs with ``auth:``."""

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
