"""WebSocket mode (GET /v1/responses upgraded) through the SDK's
``client.responses.connect()``, against a real gateway process."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai import OpenAI

from tests.gateway.observability.scrape import scrape
from tests.gateway.responses.grammar import check_events
from tests.helpers import FakeUpstream, Gateway

KEY = "sk-ws-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("websocket")
    config = {
        "server": {"access_log": str(tmp / "access.log")},
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "alpha", "model": "m1"}]}},
        "auth": {"keys": [{"name": "ws", "key": "${KEY}"}]},
    }
    server = Gateway(tmp, config, env={"KEY": KEY})
    server.access_log = tmp / "access.log"  # type: ignore[attr-defined]
    yield server
    server.stop()


def client(gateway: Gateway, key: str = KEY) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def turn(connection: Any, **create: Any) -> list[dict[str, Any]]:
    """Send one response.create; the events until its terminal (or error) event."""
    connection.response.create(**create)
    events = []
    for event in connection:
        events.append(event.model_dump(exclude_unset=True))
        if event.type in ("response.completed", "response.incomplete", "response.failed"):
            return events
        if event.type == "error" and len(events) == 1:
            return events
    raise AssertionError("the socket closed mid-turn")


def test_several_turns_on_one_socket_with_an_error_turn(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    with client(gateway).responses.connect() as connection:
        first = turn(connection, model="chat", input="one", store=False)
        response = check_events(first)
        assert response["output"][0]["content"][0]["text"] == "alpha: one"
        second = turn(
            connection, model="chat", input="two", store=False, previous_response_id=response["id"]
        )
        continued = check_events(second)
        assert second[0]["sequence_number"] == 0, "each turn counts its own events"
        assert [m["role"] for m in upstream.requests()[-1]["body"]["messages"]] == [
            "user",
            "assistant",
            "user",
        ]
        # An error turn: an error event with its status; the socket stays usable.
        [error] = turn(connection, model="no-such-model", input="x")
        assert error["type"] == "error" and error["status"] == 404
        assert error["error"]["code"] == "model_not_found" and error["error"]["param"] == "model"
        [invalid] = turn(connection, model="chat", input="x", temperature=9)
        assert invalid["status"] == 400 and invalid["error"]["param"] == "temperature"
        third = turn(
            connection,
            model="chat",
            input="three",
            store=False,
            previous_response_id=continued["id"],
        )
        assert check_events(third)["output"][0]["content"][0]["text"] == "alpha: three"
        assert len(upstream.requests()[-1]["body"]["messages"]) == 5
    # store: false responses lived in that connection only.
    with pytest.raises(openai.NotFoundError):
        client(gateway).responses.retrieve(continued["id"])


def test_stored_turns_are_shared_with_http(gateway: Gateway) -> None:
    with client(gateway).responses.connect() as connection:
        events = turn(connection, model="chat", input="keep this")
    response = check_events(events)
    stored = client(gateway).responses.retrieve(response["id"])
    assert stored.output_text == "alpha: keep this"
    http = client(gateway).responses.create(
        model="chat", input="and continue", previous_response_id=response["id"]
    )
    assert http.output_text == "alpha: and continue"
    with client(gateway).responses.connect() as connection:
        again = turn(
            connection, model="chat", input="from a new socket", previous_response_id=http.id
        )
    assert check_events(again)["previous_response_id"] == http.id


def test_stream_id_and_warmup(gateway: Gateway, upstream: FakeUpstream) -> None:
    with client(gateway).responses.connect() as connection:
        warm = turn(
            connection,
            model="chat",
            input="context only",
            generate=False,
            stream_id="lane-a",
            store=False,
        )
        prepared = check_events(warm)
        assert prepared["output"] == [] and prepared["status"] == "completed"
        assert all(event["stream_id"] == "lane-a" for event in warm)
        before = len(upstream.requests())
        events = turn(
            connection,
            model="chat",
            input="now answer",
            store=False,
            previous_response_id=prepared["id"],
        )
        check_events(events)
        assert len(upstream.requests()) == before + 1, "the warm-up called no model"
        messages = upstream.requests()[-1]["body"]["messages"]
        assert [m["content"] for m in messages] == ["context only", "now answer"]


def test_bad_frames_are_error_events(gateway: Gateway) -> None:
    with client(gateway).responses.connect() as connection:
        for raw in ('{"type": "response.cancel"}', "not json", '{"type": "response.create"}'):
            connection.send_raw(raw)
            event = orjson.loads(connection.recv_bytes())
            assert event["type"] == "error" and event["status"] == 400, event
        ok = turn(connection, model="chat", input="still here", store=False)
        assert check_events(ok)["status"] == "completed"


def test_handshake_is_authenticated(gateway: Gateway) -> None:
    with pytest.raises(Exception) as caught, client(gateway, "sk-wrong").responses.connect():
        pass
    assert "401" in str(caught.value)
    plain = httpx.get(gateway.base_url + "/responses", headers={"Authorization": f"Bearer {KEY}"})
    assert plain.status_code == 405 and plain.json()["error"]["code"] == "websocket_required"


def test_each_turn_is_a_request_in_metrics_and_logs(gateway: Gateway) -> None:
    def responses_total() -> float:
        series = scrape(gateway.url).series("vllm_gateway_requests_total", endpoint="/v1/responses")
        return sum(series.values())

    before = responses_total()
    with client(gateway).responses.connect() as connection:
        for n in range(3):
            turn(connection, model="chat", input=f"turn {n}", store=False)
    assert responses_total() == before + 3, "three turns; the upgrade itself is not a request"
    path: Path = gateway.access_log  # type: ignore[attr-defined]
    lines = [orjson.loads(line) for line in path.read_text().splitlines() if line]
    turns = [line for line in lines if line["method"] == "WS"]
    assert len(turns) >= 3 and all(line["key_name"] == "ws" for line in turns)
    assert turns[-1]["request_id"].endswith(".3") and turns[-1]["target"] == "alpha/m1"


def test_shutdown_closes_sockets_without_waiting_out_the_drain(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    config = {
        "server": {"drain_seconds": 20},
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "alpha", "model": "m1"}]}},
    }
    server = Gateway(tmp_path, config)
    try:
        with client(server, "unused").responses.connect() as connection:
            check_events(turn(connection, model="chat", input="hello", store=False))
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            with pytest.raises(Exception) as closed:
                connection.recv()
            assert "1001" in str(closed.value)
        assert server.proc.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        server.stop()
