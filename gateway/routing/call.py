"""One client request as the router and its balancers see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.base import Body

Operation = Literal["chat", "completions", "embeddings"]


@dataclass(slots=True)
class Call:
    """One client request as the router needs it."""

    operation: Operation
    body: Body
    session_key: str | None = None
    # Counted on demand (context-window checks), then kept for others (limits, usage).
    prompt_tokens: int | None = None
    fallbacks_taken: int = 0
    # The prompt's block hashes (``gateway.routing.prefix``) and the block size
    # they were cut at, computed once however many times the request is routed.
    prefix_blocks: tuple[int, list[int]] | None = None
