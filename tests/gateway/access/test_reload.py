"""Config reload (admin endpoint and SIGHUP) swaps keys without dropping
in-flight requests, and a bad config leaves the running one in place."""

from __future__ import annotations

import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from openai import OpenAI

from tests.gateway.conftest import auth_config, sha256_hex
from tests.helpers import FakeUpstream, Gateway

OLD_KEY = "sk-old-" + secrets.token_hex(8)
NEW_KEY = "sk-new-" + secrets.token_hex(8)
HUP_KEY = "sk-hup-" + secrets.token_hex(8)
ADMIN_KEY = "sk-admin-" + secrets.token_hex(8)
USER = [{"role": "user", "content": "hello there"}]
SLOW_TEXT = "[slow] one two three four five six seven eight"


def config_with(upstream: FakeUpstream, tmp: Path, *names_and_keys: tuple[str, str]) -> dict:
    keys = [{"name": name, "key_sha256": sha256_hex(key)} for name, key in names_and_keys]
    auth = {"keys": keys, "admin_keys": [{"name": "ops", "key": "${ADMIN_KEY}"}]}
    return auth_config(upstream, tmp / "access.log", auth)


@pytest.fixture
def reloadable(tmp_path: Path, upstream: FakeUpstream) -> Iterator[Gateway]:
    server = Gateway(
        tmp_path, config_with(upstream, tmp_path, ("old", OLD_KEY)), env={"ADMIN_KEY": ADMIN_KEY}
    )
    yield server
    server.stop()


def status(gateway: Gateway, key: str) -> int:
    try:
        OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0).chat.completions.create(
            model="chat", messages=USER
        )
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def reload(gateway: Gateway, key: str = ADMIN_KEY) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/gateway/reload", headers={"Authorization": f"Bearer {key}"}
    )


def write_config(gateway: Gateway, config: dict[str, Any]) -> None:
    gateway.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_reload_swaps_keys_without_dropping_a_stream(
    reloadable: Gateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    streamed: list[str] = []
    started = threading.Event()

    def stream_with_old_key() -> None:
        old = OpenAI(base_url=reloadable.base_url, api_key=OLD_KEY, max_retries=0)
        stream = old.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": SLOW_TEXT}], stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                streamed.append(chunk.choices[0].delta.content)
                started.set()

    reader = threading.Thread(target=stream_with_old_key)
    reader.start()
    assert started.wait(10)
    write_config(reloadable, config_with(upstream, tmp_path, ("new", NEW_KEY)))
    reply = reload(reloadable)
    assert reply.status_code == 200, reply.text
    assert reply.json()["keys"] == 1
    assert reader.is_alive()  # the stream was still running during the swap
    reader.join(20)
    assert "".join(streamed) == f"alpha: {SLOW_TEXT}"  # every chunk arrived
    assert status(reloadable, OLD_KEY) == 401
    assert status(reloadable, NEW_KEY) == 200
    assert "config reloaded" in reloadable.log()


def test_sighup_reloads(reloadable: Gateway, upstream: FakeUpstream, tmp_path: Path) -> None:
    write_config(reloadable, config_with(upstream, tmp_path, ("hup", HUP_KEY)))
    reloadable.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while status(reloadable, HUP_KEY) != 200:
        assert time.monotonic() < deadline, reloadable.log()
        time.sleep(0.1)
    assert status(reloadable, OLD_KEY) == 401
    assert reloadable.proc.poll() is None


def test_bad_config_keeps_the_running_one(reloadable: Gateway, upstream: FakeUpstream) -> None:
    broken = config_with(upstream, Path("."), ("old", OLD_KEY))
    broken["auth"]["keys"][0]["rpn"] = 3
    write_config(reloadable, broken)
    reply = reload(reloadable)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "invalid_config"
    assert "auth.keys[0].rpn: unknown key 'rpn' (did you mean 'rpm'?)" in error["message"]
    assert status(reloadable, OLD_KEY) == 200
    assert reload(reloadable, OLD_KEY).status_code == 403  # only admin keys may reload
