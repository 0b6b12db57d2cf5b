"""What the lean transport does beyond the shared contract (test_conformance.py):
the upstream's own keep-alive hint, a bounded pool, one idle timer per stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest

from adapters.config import Timeouts
from adapters.errors import UpstreamTimeoutError
from adapters.transport.base import StreamedResponse
from adapters.transport.lean import LeanTransport
from adapters.transport.settings import TransportSettings
from tests.fakes.raw_http import JSON_BODY, RawServer
from tests.helpers import FakeUpstream

TIMEOUTS = Timeouts(connect=2, first_token=5, idle=2, total=10)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    server = FakeUpstream(tmp_path_factory.mktemp("lean"), "lean")
    yield server
    server.stop()


def lean(**options: object) -> LeanTransport:
    return LeanTransport(TransportSettings(what="upstream test", trust_env=False, **options))  # type: ignore[arg-type]


async def test_the_upstreams_keep_alive_timeout_is_honoured() -> None:
    server = await RawServer().start()
    transport = lean(keepalive_expiry=30)
    url = server.base_url + "/keepalive-hint"  # Keep-Alive: timeout=1
    assert (await transport.request("POST", url, b"{}", TIMEOUTS)).body == JSON_BODY
    assert (await transport.request("POST", url, b"{}", TIMEOUTS)).body == JSON_BODY
    await asyncio.sleep(0.7)  # past the hint less its margin, though the server still holds it
    assert (await transport.request("POST", url, b"{}", TIMEOUTS)).body == JSON_BODY
    await transport.aclose()
    await server.stop()
    assert server.connections == 2


async def test_requests_beyond_the_pool_wait_for_a_connection() -> None:
    server = await RawServer().start()
    transport = lean(max_connections=1)
    url = server.base_url + "/chunked"  # 30 ms per answer
    answers = await asyncio.gather(
        *(transport.request("POST", url, b"{}", TIMEOUTS) for _ in range(4))
    )
    await transport.aclose()
    await server.stop()
    assert [a.body for a in answers] == [JSON_BODY] * 4
    assert server.connections == 1


def _slow_stream(words: int) -> bytes:
    """A stream whose chunks come 0.2 s apart (the fake's ``[slow]`` marker)."""
    text = "[slow] " + " ".join(f"w{i}" for i in range(words))
    messages = [{"role": "user", "content": text}]
    return orjson.dumps({"model": "m", "messages": messages, "stream": True})


async def _read_all(response: StreamedResponse) -> bytes:
    body = b""
    while piece := await response.read_some():
        body += piece
    return body


async def test_a_steady_stream_outlasts_its_idle_limit(upstream: FakeUpstream) -> None:
    # Eight gaps of 0.2 s under an idle limit of 0.5 s: 1.6 s in all, so the
    # one idle timer fires mid-stream and must see that data kept coming.
    transport = lean()
    loop = asyncio.get_running_loop()
    started = loop.time()
    timeouts = TIMEOUTS.model_copy(update={"idle": 0.5})
    url = upstream.base_url + "/chat/completions"
    response = await transport.stream("POST", url, _slow_stream(8), timeouts)
    body = await _read_all(response)
    response.release()
    await transport.aclose()
    assert loop.time() - started > 1.0
    assert body.count(b"data: {") >= 9 and body.endswith(b"data: [DONE]\n\n")


async def test_a_gap_longer_than_the_idle_limit_times_out(upstream: FakeUpstream) -> None:
    transport = lean()
    timeouts = TIMEOUTS.model_copy(update={"idle": 0.1})
    url = upstream.base_url + "/chat/completions"
    response = await transport.stream("POST", url, _slow_stream(3), timeouts)
    started = asyncio.get_running_loop().time()
    with pytest.raises(UpstreamTimeoutError):
        await _read_all(response)
    assert asyncio.get_running_loop().time() - started < 0.5
    response.close()
    await transport.aclose()
