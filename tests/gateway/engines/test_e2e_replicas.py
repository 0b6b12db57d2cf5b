"""End to end: one tiny Llama 3 engine run as two replicas (two real vLLM
servers on the CPU, prefix caching on) behind a real gateway process, driven
with the OpenAI SDK. Each replica is its own target, process and restart;
``strategy: prefix`` keeps a conversation on one replica and moves it off
one that is overloaded or gone; the replicas' own load, read from their
/metrics, survives one that stops answering.

The replicas start once for this module (loading engines is the slow part);
the test that kills one runs last."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from tests.engine_gateway import (
    EngineGateway,
    build_tiny,
    launch_engine_gateway,
    ready_payload,
    tiny_engine,
)
from tests.gateway.observability.scrape import scrape
from tests.helpers import http_json, wait_for

pytestmark = pytest.mark.e2e

REPLICAS = ("llama#0", "llama#1")
SYSTEM = "You answer questions about the gateway, its engines and their caches. " * 12


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineGateway]:
    path = build_tiny("llama3")["llama3"]
    engine = tiny_engine(path, "llama3", replicas=2, enable_prefix_caching=True)
    config = {
        "engines": {"llama": engine},
        "routing": {"health_check_interval": 1},
        "models": {
            "chat": {
                "strategy": "prefix",
                "prefix": {"load_margin": 3},
                "targets": [{"engine": "llama"}],
            },
            "spread": {"strategy": "round-robin", "targets": [{"engine": "llama"}]},
        },
    }
    started = launch_engine_gateway(tmp_path_factory.mktemp("replicas"), config).settle()
    try:
        assert all(e["state"] == "ready" for e in started.settled["engines"].values()), (
            started.log()[-5000:]
        )
        yield started
    finally:
        started.gateway.stop()


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60)


class Conversation:
    """One user's chat through the gateway; each turn says where it went."""

    def __init__(self, fleet: EngineGateway, user: str) -> None:
        self.client = client(fleet.base_url)
        self.user = user
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]

    def turn(self, model: str = "chat") -> str:
        question = f"{self.user} asks about turn {len(self.messages)}, in some detail please."
        self.messages.append({"role": "user", "content": question})
        raw = self.client.chat.completions.with_raw_response.create(
            model=model,
            messages=self.messages,
            max_tokens=8,  # type: ignore[arg-type]
        )
        answer = raw.parse().choices[0].message.content or ""
        self.messages.append({"role": "assistant", "content": answer})
        return raw.headers["x-gateway-target"]


def engines(fleet: EngineGateway) -> dict[str, Any]:
    return dict(ready_payload(fleet.gateway)["engines"])


def test_each_replica_is_an_engine_of_its_own_in_ready_and_metrics(fleet: EngineGateway) -> None:
    ready = ready_payload(fleet.gateway)
    assert set(ready["engines"]) == set(REPLICAS)
    first, second = (ready["engines"][name] for name in REPLICAS)
    assert (first["engine"], first["replica"], second["replica"]) == ("llama", 0, 1)
    assert first["pid"] != second["pid"] and first["url"] != second["url"]
    assert ready["models"]["chat"]["targets"] == {"engine/llama#0": "up", "engine/llama#1": "up"}

    # Each replica's own load, read from its /metrics about once a second.
    def both_reported() -> list[dict[str, float]] | None:
        loads = [e["load"] for e in engines(fleet).values() if e["load"]]
        return loads if len(loads) == 2 else None

    loads = wait_for(both_reported, 10, "a load report from each replica")
    assert all(load["age_seconds"] < 4 for load in loads)
    listing = http_json("GET", fleet.gateway.url + "/v1/gateway/targets")
    reported = {t["id"]: t["engine_load"] for t in listing["data"]}
    assert set(reported) == {"engine/llama#0", "engine/llama#1"} and all(reported.values())
    scraped = scrape(fleet.gateway.url)
    for name in REPLICAS:
        assert scraped.value("vllm_gateway_engine_state", engine=name, state="ready") == 1
        assert scraped.value("vllm_gateway_engine_metrics_up", engine=name) == 1
        assert scraped.series("vllm:num_requests_running", engine=name)


def test_a_conversation_stays_on_one_replica(fleet: EngineGateway) -> None:
    talks = [Conversation(fleet, f"user-{i}") for i in range(3)]
    homes: dict[str, set[str]] = {talk.user: set() for talk in talks}
    for _ in range(4):
        for talk in talks:
            homes[talk.user].add(talk.turn())
    assert all(len(targets) == 1 for targets in homes.values()), homes
    # Round-robin, for contrast, alternates a conversation's turns.
    contrast = Conversation(fleet, "contrast")
    assert len({contrast.turn("spread") for _ in range(4)}) == 2


class DirectLoad:
    """Long streams sent straight to one replica's engine, past the gateway:
    load only the engine's own /metrics can tell the gateway about."""

    def __init__(self, url: str, streams: int) -> None:
        self.client = client(url)
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(streams)
        self.futures = [self.pool.submit(self._stream, slot) for slot in range(streams)]

    def _stream(self, slot: int) -> int:
        # One stream after another until told to stop: a tiny engine finishes
        # 900 tokens in a few seconds, sooner than the load may have been read.
        # Each slot's streams are of another length, so the slots never end and
        # start again together (a once-a-second load report could land in that
        # gap and see the engine nearly idle).
        chunks = 0
        while not self.stop.is_set():
            stream = self.client.chat.completions.create(
                model="tiny-llama3",
                messages=[{"role": "user", "content": "Tell a very long story."}],
                max_tokens=900 - 60 * slot,  # the engine holds 1024 tokens
                stream=True,
                extra_body={"ignore_eos": True},
            )
            with stream:
                for _ in stream:
                    chunks += 1
                    if self.stop.is_set():
                        break
        return chunks

    def end(self) -> None:
        self.stop.set()
        for future in self.futures:
            future.result(timeout=60)
        self.pool.shutdown()


def test_an_overloaded_replica_hands_the_conversation_to_the_other(fleet: EngineGateway) -> None:
    talk = Conversation(fleet, "busy-user")
    home = talk.turn()
    assert talk.turn() == home
    other = next(f"engine/{n}" for n in REPLICAS if f"engine/{n}" != home)
    home_engine = home.removeprefix("engine/")
    load = DirectLoad(engines(fleet)[home_engine]["url"], streams=6)
    try:
        wait_for(
            lambda: (engines(fleet)[home_engine]["load"] or {}).get("running", 0) >= 5,
            30,
            "the engine reporting the direct streams",
        )
        # Past the margin of 3: the next turn goes to the least loaded replica.
        assert talk.turn() == other
    finally:
        load.end()
    wait_for(
        lambda: (engines(fleet)[home_engine]["load"] or {}).get("running", 1) == 0,
        30,
        "the direct streams ending",
    )
    # The conversation's longest prefix is on the other replica now: it stays there.
    assert talk.turn() == other


def test_load_reading_survives_a_replica_that_stops_answering(fleet: EngineGateway) -> None:
    stopped, running = (engines(fleet)[name] for name in REPLICAS)
    os.kill(stopped["pid"], signal.SIGSTOP)
    try:
        # Its last report ages out while the other replica's stays current.
        now = wait_for(
            lambda: (e := engines(fleet))["llama#0"]["load"] is None and e, 15, "aged out"
        )
        assert now["llama#1"]["load"] is not None and now["llama#1"]["load"]["age_seconds"] < 3
        began = time.monotonic()
        scraped = scrape(fleet.gateway.url)
        assert time.monotonic() - began < 5  # each engine's scrape is bounded
        assert scraped.value("vllm_gateway_engine_metrics_up", engine="llama#0") == 0
        assert scraped.value("vllm_gateway_engine_metrics_up", engine="llama#1") == 1
    finally:
        os.kill(stopped["pid"], signal.SIGCONT)
    wait_for(lambda: engines(fleet)["llama#0"]["load"], 10, "llama#0 reporting again")
    assert engines(fleet)["llama#1"]["pid"] == running["pid"]


def test_a_killed_replica_restarts_alone_while_requests_keep_flowing(
    fleet: EngineGateway,
) -> None:
    talk = Conversation(fleet, "survivor")
    home = talk.turn()
    before = engines(fleet)
    victim = home.removeprefix("engine/")
    survivor = next(name for name in REPLICAS if name != victim)
    os.kill(before[victim]["pid"], signal.SIGKILL)
    # Every turn is answered, by the live replica, while the other restarts.
    answered_by = {talk.turn() for _ in range(4)}
    assert answered_by == {f"engine/{survivor}"}
    assert {Conversation(fleet, f"new-{i}").turn() for i in range(3)} == {f"engine/{survivor}"}
    after = wait_for(
        lambda: (e := engines(fleet))[victim]["state"] == "ready" and e[victim]["pid"] and e,
        300,
        f"{victim} restarting",
    )
    assert after[victim]["restarts"] == 1 and after[victim]["pid"] != before[victim]["pid"]
    # The live one was never touched.
    assert after[survivor]["pid"] == before[survivor]["pid"]
    assert after[survivor]["restarts"] == 0
    # Back in rotation: round-robin reaches both replicas again.
    spread = Conversation(fleet, "after-restart")
    assert len({spread.turn("spread") for _ in range(4)}) == 2
