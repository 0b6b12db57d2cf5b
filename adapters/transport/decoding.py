"""Response bodies as the client reads them: decompressed as the bytes arrive
and counted against a size limit, so neither a large answer nor a small
compressed one that expands (a decompression bomb) can take more memory than
the limit allows."""

from __future__ import annotations

import zlib

from adapters.errors import UpstreamError
from adapters.transport.base import RawHeaders

_ZLIB_METHOD_DEFLATE = 8


class BodyDecoder:
    """Decodes one body: ``feed`` each piece as it arrives, ``flush`` at its end.

    Identity bodies pass through untouched (only counted). ``gzip`` and
    ``deflate`` (with or without the zlib header, which servers disagree on)
    are inflated with at most ``limit + 1`` bytes of output per call, so a
    bomb is stopped before it is expanded. Anything else is refused.
    """

    __slots__ = ("_head", "_inflate", "_kind", "_limit", "_what", "identity", "room")

    def __init__(self, encoding: bytes | None, limit: int, what: str) -> None:
        self._kind = (encoding or b"identity").strip().lower()
        if self._kind in (b"x-gzip",):
            self._kind = b"gzip"
        if self._kind not in (b"identity", b"gzip", b"deflate"):
            raise UpstreamError(
                f"{what} answered with an unsupported Content-Encoding "
                f"({self._kind.decode('latin-1')})"
            )
        self._limit = limit
        # Bytes of output still allowed. A reader may take an identity piece
        # that fits itself (``room -= len(piece)``) rather than call ``feed``.
        self.room = limit
        self.identity = self._kind == b"identity"
        self._what = what
        self._inflate: zlib._Decompress | None = None
        self._head = b""  # deflate: the first byte, until the second tells the format
        if self._kind == b"gzip":
            self._inflate = zlib.decompressobj(wbits=31)

    @classmethod
    def for_headers(cls, raw_headers: RawHeaders, limit: int, what: str) -> BodyDecoder:
        encoding = None
        for name, value in raw_headers:
            if name.lower() == b"content-encoding":
                encoding = value
        return cls(encoding, limit, what)

    def feed(self, data: bytes) -> bytes:
        if self.identity:
            self._count(len(data))
            return data
        inflate = self._inflate
        if inflate is None:  # deflate: the first two bytes tell whether a zlib header is there
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return b""
            inflate = self._inflate = zlib.decompressobj(wbits=15 if _zlib_header(data) else -15)
        try:
            out = inflate.decompress(data, self.room + 1)
        except zlib.error as exc:
            raise UpstreamError(f"{self._what} sent a malformed compressed body") from exc
        self._count(len(out))
        return out

    def flush(self) -> bytes:
        if self._inflate is None:
            if self._head:
                raise UpstreamError(f"{self._what} sent a malformed compressed body")
            return b""
        try:
            out = self._inflate.flush()
        except zlib.error as exc:
            raise UpstreamError(f"{self._what} sent a malformed compressed body") from exc
        self._count(len(out))
        return out

    def _count(self, size: int) -> None:
        self.room -= size
        if self.room < 0:
            raise UpstreamError(
                f"{self._what} sent a response larger than the limit of {self._limit} bytes "
                "(max_response_bytes)"
            )


def _zlib_header(data: bytes) -> bool:
    """RFC 1950's two-byte header: method 8, and a check value divisible by 31."""
    return data[0] & 0x0F == _ZLIB_METHOD_DEFLATE and ((data[0] << 8) | data[1]) % 31 == 0
