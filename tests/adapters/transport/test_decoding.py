"""Body decoding, fed bytes cut anywhere: gzip and deflate (with and without
the zlib header) inflate to the same bytes, and the size limit holds."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.errors import UpstreamError
from adapters.transport.decoding import BodyDecoder

PLAIN = b"".join(b"line %d of a body that compresses well\n" % i for i in range(400))
ENCODED = {
    "gzip": (b"gzip", 31),
    "deflate": (b"deflate", 15),
    "raw-deflate": (b"deflate", -15),
}


def compress(wbits: int, data: bytes = PLAIN) -> bytes:
    deflate = zlib.compressobj(wbits=wbits)
    return deflate.compress(data) + deflate.flush()


def decode(encoding: bytes | None, pieces: list[bytes], limit: int = 10**7) -> bytes:
    decoder = BodyDecoder(encoding, limit, "upstream u")
    return b"".join(decoder.feed(piece) for piece in pieces) + decoder.flush()


@pytest.mark.parametrize("name", ENCODED)
@given(cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8))
def test_a_compressed_body_cut_anywhere_inflates_whole(name: str, cuts: list[int]) -> None:
    encoding, wbits = ENCODED[name]
    body = compress(wbits)
    points = sorted({min(c, len(body)) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert decode(encoding, pieces) == PLAIN


def test_identity_passes_through_and_counts() -> None:
    assert decode(None, [b"ab", b"cd"]) == b"abcd"
    with pytest.raises(UpstreamError, match="max_response_bytes"):
        decode(None, [b"abc", b"def"], limit=5)


def test_a_bomb_is_stopped_without_expanding_it() -> None:
    bomb = compress(31, bytes(20_000_000))
    decoder = BodyDecoder(b"gzip", 1_000_000, "upstream u")
    with pytest.raises(UpstreamError, match="larger than the limit of 1000000 bytes"):
        decoder.feed(bomb)


def test_unknown_and_malformed_encodings_are_upstream_errors() -> None:
    with pytest.raises(UpstreamError, match="unsupported Content-Encoding"):
        BodyDecoder(b"br", 100, "upstream u")
    with pytest.raises(UpstreamError, match="malformed compressed body"):
        decode(b"gzip", [b"not gzip at all"])
