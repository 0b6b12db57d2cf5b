"""End to end: no engine process outlives the gateway, whether it stops on
SIGTERM or is killed with SIGKILL; and the DeepSeek MoE preset on its tiny
checkpoint. Each gateway here is its own (it does not survive its test)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import openai
import pytest

from tests.engine_gateway import (
    EngineGateway,
    build_tiny,
    engine_group,
    launch_engine_gateway,
    process_group,
    tiny_engine,
)

pytestmark = pytest.mark.e2e


def one_engine_config(family: str) -> dict:
    path = build_tiny(family)[family]
    name = f"tiny-{family}"
    return {
        "engines": {name: tiny_engine(path, family)},
        "models": {name: {"targets": [{"engine": name}]}},
    }


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, EngineGateway]]:
    """Two gateways, one engine each, loading side by side to save wall time."""
    launched: dict[str, EngineGateway] = {}
    try:
        for family in ("deepseek-v3", "llama3"):
            config = one_engine_config(family)
            launched[family] = launch_engine_gateway(tmp_path_factory.mktemp(family), config)
        for started in launched.values():
            started.settle()
        yield launched
    finally:
        for started in launched.values():
            started.gateway.stop()


def engine_processes(started: EngineGateway) -> tuple[int, list[int]]:
    """The engine's process group (its reaper) and every live process in it."""
    (engine,) = started.settled["engines"].values()
    assert engine["state"] == "ready", started.gateway.log()[-3000:]
    group = engine_group(engine["pid"])
    members = process_group(group)
    return group, members


def wait_gone(group: int, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := process_group(group)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_the_deepseek_v3_moe_engine_serves_chat_and_tools(
    gateways: dict[str, EngineGateway],
) -> None:
    deepseek_v3 = gateways["deepseek-v3"]
    client = openai.OpenAI(base_url=deepseek_v3.base_url, api_key="unused", max_retries=0)
    chat = client.chat.completions.create(
        model="tiny-deepseek-v3", messages=[{"role": "user", "content": "Hi"}], max_tokens=8
    )
    assert chat.choices[0].message.content
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    with_tools = client.chat.completions.create(
        model="tiny-deepseek-v3",
        messages=[{"role": "user", "content": "Look it up"}],
        tools=tools,
        tool_choice="auto",
        max_tokens=8,
    )
    assert with_tools.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_killing_the_gateway_with_sigkill_takes_its_engines_down(
    gateways: dict[str, EngineGateway],
) -> None:
    deepseek_v3 = gateways["deepseek-v3"]
    group, members = engine_processes(deepseek_v3)
    # reaper, vLLM API server, its engine core and multiprocessing's resource tracker
    assert len(members) >= 3
    deepseek_v3.gateway.stop(signal.SIGKILL)
    assert wait_gone(group) == []


def test_sigterm_stops_the_gateway_and_every_engine_process(
    gateways: dict[str, EngineGateway],
) -> None:
    started = gateways["llama3"]
    group, members = engine_processes(started)
    assert len(members) >= 3
    began = time.monotonic()
    returncode = started.gateway.stop(signal.SIGTERM)
    assert returncode == 0
    assert time.monotonic() - began < 30
    assert process_group(group) == []  # gone by the time the gateway has exited
    assert '"engine.all_stopped"' in started.log()
