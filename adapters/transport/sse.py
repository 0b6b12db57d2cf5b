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

from adapters.config import DEFAULT_MAX_EVENT_BYTES
from adapters.errors import GatewayError, UpstreamError
from adapters.transport.errors import parse_json_object

Body = dict[str, Any]
# Bytes as integers: ``int in bytes`` is a memchr, while ``bytes in bytes``
# first fails (and formats an error) reading its operand as an integer.
CR, LF = ord("\r"), ord("\n")


class SSEEvents:
    """Splits an SSE body into the ``data`` of its complete events (multi-line
    data joined by newlines, as the SSE spec says); comments, ``event:`` and
    ``id:`` lines are skipped. An event cut off by the end of the body is
    never returned.

    Linear in the body's size however it is cut: a partial line is kept as
    pieces and joined once, when its end arrives. An event (its data lines and
    the line under way) larger than ``max_event_bytes`` is an ``UpstreamError``,
    so a peer that never ends a line cannot grow memory without bound."""

    __slots__ = ("_data", "_data_size", "_max", "_rest", "_rest_size", "_skip_lf", "_what")

    def __init__(
        self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, what: str = "upstream"
    ) -> None:
        self._rest: list[bytes] = []  # the line under way, in the pieces it came in
        self._rest_size = 0
        self._data: list[bytes] = []  # the data lines of the event under way
        self._data_size = 0
        self._skip_lf = False
        self._max = max_event_bytes
        self._what = what

    def feed(self, data: bytes) -> list[bytes]:
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]  # the second half of a CRLF cut between reads
        if CR in data:
            self._skip_lf = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if LF not in data:
            self._rest.append(data)
            self._rest_size += len(data)
            if self._data_size + self._rest_size > self._max:
                raise self._too_large()
            return []
        lines = data.split(b"\n")
        tail = lines.pop()
        if self._rest:
            lines[0] = b"".join(self._rest) + lines[0]
        events: list[bytes] = []
        pending = self._data
        carried = len(pending)  # data lines of an event begun in an earlier read
        for line in lines:
            if not line:
                if pending:
                    event = pending[0] if len(pending) == 1 else b"\n".join(pending)
                    if len(event) > self._max:
                        raise self._too_large()
                    events.append(event)
                    pending = self._data = []
                    carried = 0
            elif line.startswith(b"data:"):
                pending.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line == b"data":
                pending.append(b"")
        self._rest = [tail] if tail else []
        self._rest_size = len(tail)
        # Sizes are counted per event, and per line only for an event still
        # under way (rare: one spanning reads), so the usual read costs no
        # per-line bookkeeping.
        if pending:
            base = self._data_size if carried else 0
            self._data_size = base + sum(len(value) + 1 for value in pending[carried:])
        else:
            self._data_size = 0
        if self._data_size + self._rest_size > self._max:
            raise self._too_large()
        return events

    def _too_large(self) -> UpstreamError:
        return UpstreamError(
            f"{self._what} sent a stream event larger than the limit of {self._max} bytes "
            "(max_event_bytes)"
        )


class ChunkDecoder:
    """Turns one upstream SSE body into OpenAI chunks: the body split into
    events, each event translated (``translate``), and an error that follows
    good chunks in the same read held back until those chunks have been sent."""

    # Why a body that ends before the stream's last event is an error.
    unfinished = "ended the stream early"

    def __init__(self, what: str, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._events = SSEEvents(max_event_bytes, what)
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
