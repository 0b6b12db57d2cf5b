"""Server-sent events, decoded as the bytes arrive.

A stream is read in whatever pieces the network delivers; each piece is fed
to a ``ChunkDecoder``, which returns every OpenAI chunk it completes. The
gateway forwards those chunks to the client in one write, so a burst of
events that arrived together leaves together, and an event that arrives
alone leaves at once. The decoders are plain synchronous objects: one per
stream, no I/O, tested by feeding bytes.
"""

from __future__ import annotations

from typing import Any

from adapters.errors import GatewayError, UpstreamError
from adapters.transport.errors import parse_json_object

Body = dict[str, Any]


class SSEEvents:
    """Splits an SSE body into the ``data`` of its complete events (multi-line
    data joined by newlines, as the SSE spec says); comments, ``event:`` and
    ``id:`` lines are skipped. An event cut off by the end of the body is
    never returned."""

    __slots__ = ("_data", "_rest", "_skip_lf")

    def __init__(self) -> None:
        self._rest = b""
        self._data: list[bytes] = []
        self._skip_lf = False

    def feed(self, data: bytes) -> list[bytes]:
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]  # the second half of a CRLF cut between reads
        buffer = self._rest + data if self._rest else data
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._rest = lines.pop()
        events: list[bytes] = []
        pending = self._data
        for line in lines:
            if not line:
                if pending:
                    events.append(pending[0] if len(pending) == 1 else b"\n".join(pending))
                    pending = self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                pending.append(value[1:] if value[:1] == b" " else value)
            elif line == b"data":
                pending.append(b"")
        return events


class ChunkDecoder:
    """Turns one upstream SSE body into OpenAI chunks: the body split into
    events, each event translated (``translate``), and an error that follows
    good chunks in the same read held back until those chunks have been sent."""

    # Why a body that ends before the stream's last event is an error.
    unfinished = "ended the stream early"

    def __init__(self, what: str) -> None:
        self._events = SSEEvents()
        self.what = what
        self.done = False  # the stream's last event has been seen
        # An error met after other chunks of the same read: raised once those are sent.
        self.failure: GatewayError | None = None

    def translate(self, event: bytes) -> list[Body]:
        raise NotImplementedError

    def feed(self, data: bytes) -> list[Body]:
        """The chunks that ``data`` completes (often none, often several)."""
        chunks: list[Body] = []
        try:
            for event in self._events.feed(data):
                chunks += self.translate(event)
                if self.done:
                    break
        except GatewayError as exc:
            if not chunks:
                raise
            self.failure = exc
        return chunks

    def end(self) -> list[Body]:
        """The body ended: the last chunks, or ``UpstreamError`` if it ended early."""
        raise UpstreamError(f"{self.what} {self.unfinished}")

    def parse(self, event: bytes) -> Body:
        """One event's JSON object."""
        return parse_json_object(event, self.what, "a stream event")
