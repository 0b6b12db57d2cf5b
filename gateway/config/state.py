"""The ``state:`` section of models.yaml: where the Responses and Conversations
APIs keep what they store (responses, their items, conversations).

    state:
      backend: redis            # memory (default) | redis (uses redis_url)
      ttl_days: 30              # stored responses and conversations expire
      max_items_per_conversation: 10000

``memory`` keeps state in this process, bounded (least recently used objects
go first); ``redis`` keeps it in the Redis of ``redis_url``, shared by every
replica. When Redis cannot be reached, ``auth.redis_failure`` decides, as for
rate limits: ``fail_open`` keeps serving from per-replica memory,
``fail_closed`` answers 503.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from adapters.config import Strict

StateBackend = Literal["memory", "redis"]


class StateConfig(Strict):
    backend: StateBackend = "memory"
    ttl_days: float = Field(30.0, gt=0, description="Stored responses and conversations expire")
    max_items_per_conversation: int = Field(
        10_000, gt=0, description="Items a conversation (or a response chain) may hold"
    )
    # Not in the contract: the bound of the memory backend.
    memory_max_objects: int = Field(
        10_000, gt=0, description="memory backend: responses and conversations kept (LRU)"
    )

    @property
    def ttl_seconds(self) -> float:
        return self.ttl_days * 86_400.0
