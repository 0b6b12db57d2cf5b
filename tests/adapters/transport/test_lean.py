"""The lean upstream client: keep-alive reuse, streams, stale connections, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from adapters.errors import UpstreamUnavailableError
from adapters.transport.lean import FastPool, StreamedResponse
from tests.helpers import FakeUpstream, free_port

BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "a b c"}]})
STREAM = orjson.dumps(
    {"model": "m", "messages": [{"role": "user", "content": "a b c"}], "stream": True}
)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    server = FakeUpstream(tmp_path_factory.mktemp("fasthttp"), "fast")
    yield server
    server.stop()


def pool_for(upstream: FakeUpstream) -> FastPool:
    return FastPool(upstream.url, {"Authorization": "Bearer k"}, 4, "fake")


async def test_posts_reuse_one_connection(upstream: FakeUpstream) -> None:
    pool = pool_for(upstream)
    for _ in range(5):
        status, _, raw = await pool.post(upstream.base_url + "/chat/completions", BODY, 1)
        assert status == 200 and orjson.loads(raw)["choices"][0]["message"]["content"]
    assert (pool._size, len(pool._idle)) == (1, 1)
    assert upstream.requests()[-1]["headers"]["authorization"] == "Bearer k"
    pool.close()


async def test_streams_are_read_as_they_arrive_and_reuse_the_connection(
    upstream: FakeUpstream,
) -> None:
    pool = pool_for(upstream)
    for _ in range(3):
        response = await pool.stream(upstream.base_url + "/chat/completions", STREAM, 1, 1)
        assert response.status == 200
        body = b""
        while b"data: [DONE]" not in body:
            piece = await response.read_some()
            assert piece, "the body ended before [DONE]"
            body += piece
        response.release()
        assert body.count(b"data: {") == 5  # 4 words + stop
    # The message's last bytes may land after [DONE] (so a stream that starts at
    # once may open a second connection); each connection still goes back.
    for _ in range(50):
        if len(pool._idle) == pool._size:
            break
        await asyncio.sleep(0.01)
    assert 1 <= len(pool._idle) == pool._size <= 2
    pool.close()


async def test_a_stale_idle_connection_is_replaced(tmp_path: Path) -> None:
    server = FakeUpstream(tmp_path, "stale")
    pool = pool_for(server)
    url = server.base_url + "/chat/completions"
    assert (await pool.post(url, BODY, 1))[0] == 200
    server.stop()  # the idle connection dies with the server
    # The dead idle connection is dropped, not written to; a new one is refused.
    with pytest.raises(UpstreamUnavailableError):
        await pool.post(url, BODY, 1)
    assert pool._size == 0
    pool.close()


async def test_unreachable_is_unavailable() -> None:
    origin = f"http://127.0.0.1:{free_port()}"
    pool = FastPool(origin, {}, 2, "nowhere")
    with pytest.raises(UpstreamUnavailableError):
        await pool.post(origin + "/v1/x", BODY, 1)
    assert pool._size == 0


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
    pool = pool_for(upstream)
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await pool.stream(upstream.base_url + "/chat/completions", _slow_stream(8), 1, 0.5)
    body = await _read_all(response)
    response.release()
    assert loop.time() - started > 1.0
    assert body.count(b"data: {") >= 9 and body.endswith(b"data: [DONE]\n\n")
    pool.close()


async def test_a_gap_longer_than_the_idle_limit_times_out(upstream: FakeUpstream) -> None:
    pool = pool_for(upstream)
    response = await pool.stream(upstream.base_url + "/chat/completions", _slow_stream(3), 1, 0.1)
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await _read_all(response)
    assert asyncio.get_running_loop().time() - started < 0.5
    response.close()
    assert pool._size == 0
    pool.close()
