"""Each engine replica's own load, read from its ``/metrics`` about once a
second, for the balancers (``gateway.routing.load.BackendLoad``).

``LoadMonitor.run`` reads every ready replica at once, each read bounded by
a short timeout, so a replica that stops answering (hung, stopped, its
machine gone) costs one timeout per round and never holds up the others'
reports. Each report counts for ``GOOD_FOR_ROUNDS`` rounds: a replica that
stops answering has none after that (a replica not ready, at once). Of vLLM's
exposition only three gauges are read, with one regular expression over the
text (no full parse): ``vllm:num_requests_running``,
``vllm:num_requests_waiting`` (summed over a server's engine cores) and
``vllm:kv_cache_usage_perc`` (the highest).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping

from adapters.config import Timeouts
from adapters.errors import GatewayError
from adapters.transport.registry import open_transport
from adapters.transport.settings import TransportSettings
from gateway.config.fleet import EngineLoadConfig
from gateway.engines.handle import EngineStatus
from gateway.routing.load import BackendLoad

GOOD_FOR_ROUNDS = 3

_GAUGE = re.compile(
    rb"^vllm:(num_requests_running|num_requests_waiting|kv_cache_usage_perc)"
    rb"(?:\{[^}\n]*\})? ([^\s]+)",
    re.MULTILINE,
)


def parse_load(text: bytes) -> tuple[float, float, float] | None:
    """(running, waiting, KV cache usage) from vLLM's metrics text; None when
    the text has none of them (not a vLLM server, or not Prometheus text)."""
    running = waiting = usage = 0.0
    found = False
    for match in _GAUGE.finditer(text):
        try:
            value = float(match.group(2))
        except ValueError:
            continue
        found = True
        name = match.group(1)
        if name == b"num_requests_running":
            running += value
        elif name == b"num_requests_waiting":
            waiting += value
        else:
            usage = max(usage, value)
    return (running, waiting, usage) if found else None


class LoadMonitor:
    """Keeps a ``BackendLoad`` per engine replica current (``run``)."""

    def __init__(
        self, handles: Callable[[], Mapping[str, EngineStatus]], settings: EngineLoadConfig
    ) -> None:
        self._handles = handles
        self._interval = settings.interval
        self._good_for = GOOD_FOR_ROUNDS * settings.interval + settings.timeout
        t = settings.timeout
        self._timeouts = Timeouts(connect=t, first_token=t, idle=t, total=t)
        self._transport = open_transport(TransportSettings(what="engine", trust_env=False))
        self.loads: dict[str, BackendLoad] = {}

    def load(self, name: str) -> BackendLoad:
        """The report of replica ``name``, kept current by ``run`` (the same object for good)."""
        found = self.loads.get(name)
        if found is None:
            found = self.loads[name] = BackendLoad()
        return found

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await self.read_all()
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))

    async def read_all(self) -> None:
        """One round: every replica read at once; those not ready have no report."""
        handles = list(self._handles().values())
        await asyncio.gather(*(self._read(handle) for handle in handles))

    async def _read(self, handle: EngineStatus) -> None:
        load = self.load(handle.name)
        if not handle.is_ready():
            load.lost()
            return
        url = f"http://127.0.0.1:{handle.port}/metrics"
        try:
            response = await self._transport.request("GET", url, None, self._timeouts)
        except GatewayError:
            return  # the last report ages out
        reading = parse_load(response.body) if response.status == 200 else None
        if reading is not None:
            load.report(*reading, now=time.monotonic(), good_for=self._good_for)

    async def aclose(self) -> None:
        await self._transport.aclose()
