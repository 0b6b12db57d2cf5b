"""The transports by name (``transport: lean | aiohttp`` of a provider)."""

from __future__ import annotations

from collections.abc import Callable

from adapters.config import TransportKind
from adapters.transport.aiohttp_client import AiohttpTransport
from adapters.transport.base import Transport
from adapters.transport.lean import LeanTransport
from adapters.transport.settings import TransportSettings

TRANSPORTS: dict[TransportKind, Callable[[TransportSettings], Transport]] = {
    "lean": LeanTransport,
    "aiohttp": AiohttpTransport,
}


def open_transport(settings: TransportSettings) -> Transport:
    """The transport ``settings.kind`` names; it connects lazily, on first use."""
    return TRANSPORTS[settings.kind](settings)
