"""Reloading the routing table: a blue-green rollout under load drops no
request, and providers come and go without cutting the requests on them."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai import AsyncOpenAI

from tests.helpers import FakeUpstream, Gateway

ADMIN_KEY = "sk-admin-" + secrets.token_hex(8)
CLIENTS = 20
PHASE_SECONDS = 2.5


def rollout_config(blue: FakeUpstream, green: FakeUpstream, weights: tuple[int, int]) -> dict:
    return {
        "providers": {
            "blue": {"kind": "openai", "base_url": blue.base_url},
            "green": {"kind": "openai", "base_url": green.base_url},
        },
        "models": {
            "chat": {
                "targets": [
                    {"provider": "blue", "model": "chat-v1", "weight": weights[0]},
                    {"provider": "green", "model": "chat-v2", "weight": weights[1]},
                ]
            }
        },
        "auth": {"admin_keys": [{"name": "ops", "key": "${ADMIN_KEY}"}]},
        # The weights alone decide the split here: an active health check that
        # times out on a busy CI machine would skip a target for a whole interval.
        "routing": {"health_check_interval": 0},
    }


@pytest.fixture
def blue(tmp_path: Path) -> Iterator[FakeUpstream]:
    server = FakeUpstream(tmp_path, "blue")
    yield server
    server.stop()


@pytest.fixture
def green(tmp_path: Path) -> Iterator[FakeUpstream]:
    server = FakeUpstream(tmp_path, "green")
    yield server
    server.stop()


def start(tmp_path: Path, config: dict) -> Gateway:
    return Gateway(tmp_path, config, env={"ADMIN_KEY": ADMIN_KEY})


def rewrite(gateway: Gateway, config: dict) -> None:
    gateway.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def reload(gateway: Gateway) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(gateway.base_url + "/gateway/reload", headers=ADMIN)


async def target_requests(gateway: Gateway) -> dict[str, int]:
    # The routing table is an admin's once admin keys are configured.
    async with httpx.AsyncClient() as client:
        listing = (await client.get(gateway.base_url + "/gateway/targets", headers=ADMIN)).json()
    return {target["id"]: target["requests"] for target in listing["data"]}


@dataclass
class Load:
    """CLIENTS clients sending requests back to back; each answer is filed
    under the weights phase that was in force for the whole request."""

    gateway: Gateway
    phase: int = 0
    served: dict[int, Counter[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    running: bool = True

    async def client(self, number: int) -> None:
        openai = AsyncOpenAI(base_url=self.gateway.base_url, api_key="any", max_retries=0)
        sent = 0
        while self.running:
            phase = self.phase
            try:
                target = await self.one_request(openai, number, sent)
            except Exception as exc:  # every failure is a test failure, reported below
                self.failures.append(f"client {number}: {type(exc).__name__}: {exc}")
                continue
            finally:
                sent += 1
            if phase == self.phase:
                self.served.setdefault(phase, Counter())[target] += 1
        await openai.close()

    async def one_request(self, openai: AsyncOpenAI, number: int, sent: int) -> str:
        if sent % 4 == 3:  # a slow stream, often still running when the weights change
            text = "[slow] one two three"
            raw = await openai.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": text}], stream=True
            )
            pieces = [c.choices[0].delta.content or "" async for c in raw.parse() if c.choices]
            reply = "".join(pieces)
        else:
            text = f"client {number} request {sent}"
            raw = await openai.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": text}]
            )
            reply = raw.parse().choices[0].message.content or ""
        target = raw.headers["X-Gateway-Target"]
        upstream = target.split("/")[0]
        assert reply == f"{upstream}: {text}", (target, reply)
        return target


async def shift_weights(tmp_path: Path, blue: FakeUpstream, green: FakeUpstream) -> None:
    gateway = start(tmp_path, rollout_config(blue, green, (100, 0)))
    load = Load(gateway)
    clients = [asyncio.create_task(load.client(n)) for n in range(CLIENTS)]
    try:
        await asyncio.sleep(PHASE_SECONDS)
        before = await target_requests(gateway)

        rewrite(gateway, rollout_config(blue, green, (50, 50)))
        # Requests that overlap a swap are filed under a transition phase (1, 3):
        # the gateway swaps before the reload's answer reaches this test.
        load.phase = 1
        reply = await reload(gateway)
        assert reply.status_code == 200, reply.text
        assert reply.json()["models"] == {"chat": {"blue/chat-v1": 50, "green/chat-v2": 50}}
        load.phase = 2
        await asyncio.sleep(PHASE_SECONDS)
        # The target kept its health record (counts, breaker) across the swap.
        assert (await target_requests(gateway))["blue/chat-v1"] > before["blue/chat-v1"]

        rewrite(gateway, rollout_config(blue, green, (0, 100)))
        reloads = gateway.log().count("config reloaded")
        load.phase = 3
        gateway.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while gateway.log().count("config reloaded") == reloads:
            assert time.monotonic() < deadline, gateway.log()
            await asyncio.sleep(0.05)
        load.phase = 4
        await asyncio.sleep(PHASE_SECONDS)
    finally:
        load.running = False
        await asyncio.gather(*clients)
        gateway.stop()

    assert load.failures == []
    first, middle, last = (load.served.get(phase, Counter()) for phase in (0, 2, 4))
    assert set(first) == {"blue/chat-v1"} and first.total() > 50, first
    assert set(last) == {"green/chat-v2"} and last.total() > 50, last
    share = middle["blue/chat-v1"] / middle.total()
    assert 0.3 < share < 0.7, middle


async def test_blue_green_shift_drops_no_request(
    tmp_path: Path, blue: FakeUpstream, green: FakeUpstream
) -> None:
    await shift_weights(tmp_path, blue, green)


def single_provider(upstream: FakeUpstream, name: str) -> dict[str, Any]:
    return {
        "providers": {name: {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": name, "model": "m"}]}},
        "auth": {"admin_keys": [{"name": "ops", "key": "${ADMIN_KEY}"}]},
    }


async def test_removed_provider_finishes_its_streams(
    tmp_path: Path, blue: FakeUpstream, green: FakeUpstream
) -> None:
    gateway = start(tmp_path, single_provider(blue, "blue"))
    openai = AsyncOpenAI(base_url=gateway.base_url, api_key="any", max_retries=0)
    try:
        slow = "[slow] one two three four five six"
        stream = await openai.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": slow}], stream=True
        )
        chunks = aiter(stream)
        first = await anext(chunks)
        swapped = single_provider(green, "green")
        swapped["server"] = {"max_body_bytes": 1000}  # applies on restart only
        rewrite(gateway, swapped)
        reply = await reload(gateway)
        assert reply.status_code == 200, reply.text
        assert reply.json()["models"] == {"chat": {"green/m": 1}}
        assert "changed sections apply only on restart" in gateway.log()
        assert '"sections":["server"]' in gateway.log().replace(" ", "")
        rest = [c.choices[0].delta.content or "" async for c in chunks if c.choices]
        assert (first.choices[0].delta.content or "") + "".join(rest) == f"blue: {slow}"
        answer = await openai.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == "green: hi"
    finally:
        await openai.close()
        gateway.stop()


async def test_a_model_added_by_reload_has_its_own_metrics(
    tmp_path: Path, blue: FakeUpstream
) -> None:
    gateway = start(tmp_path, single_provider(blue, "blue"))
    openai = AsyncOpenAI(base_url=gateway.base_url, api_key="any", max_retries=0)
    try:
        grown = single_provider(blue, "blue")
        grown["models"]["summaries"] = {"targets": [{"provider": "blue", "model": "s"}]}
        rewrite(gateway, grown)
        assert (await reload(gateway)).status_code == 200
        hello = [{"role": "user", "content": "hi"}]
        await openai.chat.completions.create(model="summaries", messages=hello)
        async with httpx.AsyncClient() as http:
            scrape = (await http.get(gateway.url + "/metrics")).text
        assert 'model="summaries"' in scrape
        assert 'model="other"' not in scrape
    finally:
        await openai.close()
        gateway.stop()


async def test_reload_that_adds_an_engine_is_refused(tmp_path: Path, blue: FakeUpstream) -> None:
    gateway = start(tmp_path, single_provider(blue, "blue"))
    try:
        changed = single_provider(blue, "blue")
        changed["engines"] = {"local": {"model": str(tmp_path / "no-such-model")}}
        changed["models"]["chat"]["targets"] = [{"engine": "local"}]
        rewrite(gateway, changed)
        reply = await reload(gateway)
        assert reply.status_code == 400
        error = reply.json()["error"]
        assert error["code"] == "invalid_config"
        assert "restart the gateway" in error["message"]
        async with AsyncOpenAI(base_url=gateway.base_url, api_key="any") as openai:
            answer = await openai.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "still here"}]
            )
        assert answer.choices[0].message.content == "blue: still here"
    finally:
        gateway.stop()
