"""Graceful drain on SIGTERM: nothing accepted is lost.

    running --SIGTERM--> draining: /ready answers 503 at once (a load balancer
        stops sending), no new connection is accepted, responses close their
        connection, WebSockets are closed (1001, "going away": their clients
        reconnect elsewhere); requests and streams in flight go on
    draining --all done, or server.drain_seconds--> ended: what still runs is
        ended cleanly, each stream with an SSE error event (never a truncated
        stream), a request without a response yet with 503 and Retry-After
    ended --> the app's cleanup: local engines stop after the last request

The middleware registers every request's task (``enter``/``exit``); ending
one cancels it, and the stream relay and the middleware tell that
cancellation (``ended``) from a client's disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSCloseCode, web

from adapters.errors import UpstreamUnavailableError


class Drain:
    def __init__(self) -> None:
        self.draining = False
        self._ended = False
        self._tasks: set[asyncio.Task[object]] = set()
        self._idle: asyncio.Event | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    def keep_socket(self, socket: web.WebSocketResponse) -> None:
        self._sockets.add(socket)

    def drop_socket(self, socket: web.WebSocketResponse) -> None:
        self._sockets.discard(socket)

    def enter(self) -> asyncio.Task[object] | None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        return task

    def exit(self, task: asyncio.Task[object] | None) -> None:
        if task is not None:
            self._tasks.discard(task)
        if not self._tasks and self._idle is not None:
            self._idle.set()

    @property
    def ending(self) -> bool:
        """The drain time is over: a cancelled request was ended by it, not
        by its client going away."""
        return self._ended

    def ended_error(self) -> UpstreamUnavailableError | None:
        """The error a cancelled stream ends with, when the drain ended it."""
        return self.error() if self._ended else None

    @staticmethod
    def error() -> UpstreamUnavailableError:
        return UpstreamUnavailableError(
            "The gateway is shutting down; the request did not finish within its drain time.",
            retry_after=1,
        )

    async def run(self, seconds: float) -> None:
        """Drain: let in-flight requests finish for up to ``seconds``, then end the rest."""
        self.draining = True
        for socket in list(self._sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
        if self._tasks:
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), seconds)
        if self._tasks:
            self._ended = True
            remaining = list(self._tasks)
            for task in remaining:
                task.cancel()
            # Each ends itself (an error event, a 503): give them a moment to write it.
            await asyncio.wait(remaining, timeout=5)
