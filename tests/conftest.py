"""Shared fixtures: real upstream servers and a real gateway process, once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, FakeUpstream, Gateway, build_backend, free_port

# The session's one gateway with real vLLM engines (engines_gateway), for every e2e test.
pytest_plugins = ["tests.engine_gateway"]


def pytest_sessionstart(session: pytest.Session) -> None:
    # Python imports a compiled module before its source: tests of an edited
    # source would run the old code.
    stale = build_backend().stale_modules(ROOT)
    if stale:
        pytest.exit(
            f"{', '.join(stale)} changed since compiled: run `pip install -e .` again "
            "(deploy/build_backend.py)",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("core")


@pytest.fixture(scope="session")
def upstream(session_tmp: Path) -> Iterator[FakeUpstream]:
    server = FakeUpstream(session_tmp, "alpha")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def faulty(session_tmp: Path) -> Iterator[FakeUpstream]:
    """An upstream whose faults each test sets; reset around every use."""
    server = FakeUpstream(session_tmp, "faulty")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def no_usage_upstream(session_tmp: Path) -> Iterator[FakeUpstream]:
    server = FakeUpstream(session_tmp, "quiet", usage=False)
    yield server
    server.stop()


def core_config(
    upstream: FakeUpstream, faulty: FakeUpstream, quiet: FakeUpstream, access_log: Path
) -> dict:
    fast = {"connect": 1, "first_token": 1, "idle": 1, "total": 3}
    return {
        "server": {"max_body_bytes": 200_000, "access_log": str(access_log)},
        # These tests look at each upstream failure as such: no breaker in the way
        # (tests/gateway/test_router.py covers breaking).
        "routing": {"breaker": {"failures": 1000, "error_ratio": None}},
        "providers": {
            "alpha": {"kind": "openai", "base_url": upstream.base_url, "api_key": "${ALPHA_KEY}"},
            "faulty": {"kind": "openai", "base_url": faulty.base_url, "timeouts": fast},
            "quiet": {"kind": "openai", "base_url": quiet.base_url},
            "nowhere": {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1"},
        },
        "models": {
            "chat": {"targets": [{"provider": "alpha", "model": "m1"}]},
            "org/chat-2": {"targets": [{"provider": "alpha", "model": "m2"}]},
            # One attempt: these tests see each upstream failure as the client would
            # without retries (tests/gateway/test_router.py covers retrying).
            "flaky": {
                "targets": [{"provider": "faulty", "model": "m1"}],
                "retries": {"attempts": 1},
            },
            "quiet": {"targets": [{"provider": "quiet", "model": "m1"}]},
            "down": {"targets": [{"provider": "nowhere", "model": "m1"}]},
        },
    }


@pytest.fixture(scope="session")
def gateway(
    session_tmp: Path, upstream: FakeUpstream, faulty: FakeUpstream, no_usage_upstream: FakeUpstream
) -> Iterator[Gateway]:
    access_log = session_tmp / "access.log"
    server = Gateway(
        session_tmp,
        core_config(upstream, faulty, no_usage_upstream, access_log),
        env={"ALPHA_KEY": "sk-alpha-secret-123"},
    )
    server.access_log = access_log  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def flaky(faulty: FakeUpstream) -> Iterator[FakeUpstream]:
    faulty.reset()
    yield faulty
    faulty.reset()
