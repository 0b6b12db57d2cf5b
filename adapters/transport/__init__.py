"""Carrying bytes to upstreams: one interface (``base``) with two clients
(``lean``, ``aiohttp_client``), SSE splitting (``sse``), and every transport
failure mapped into ``adapters.errors`` in one place (``errors``)."""
