"""Routing over a fleet of engine replicas: the ``prefix`` strategy's knobs
(``routing.prefix``, overridden key by key by a model's own ``prefix:``) and
the engines' own load (``routing.engine_load``)."""

from __future__ import annotations

from pydantic import Field

from adapters.config import Strict


class PrefixConfig(Strict):
    """``strategy: prefix``: the target that was recently sent the longest
    prefix of a prompt gets it, unless it is too busy."""

    block_bytes: int = Field(
        256, ge=16, le=65536, description="Bytes of the rendered prompt per hashed block"
    )
    max_blocks: int = Field(
        100_000, ge=1, description="Block hashes remembered per model; least recently used go"
    )
    load_margin: float = Field(
        4.0,
        ge=0,
        description="Requests by which the best match's load may exceed the least loaded "
        "target's before the least loaded one gets the request",
    )


class EngineLoadConfig(Strict):
    """Each engine replica's own ``/metrics``, read about once a second, and
    when a replica counts as full."""

    interval: float = Field(1.0, gt=0, description="Seconds between reads (set at startup)")
    timeout: float = Field(0.5, gt=0, description="Seconds one read may take (set at startup)")
    max_waiting: int = Field(
        8, ge=1, description="A replica with this many requests waiting is full"
    )
    max_kv_cache_usage: float = Field(
        0.99, gt=0, le=1, description="A replica whose KV cache is this used is full"
    )


def merged_prefix(base: PrefixConfig, override: PrefixConfig | None) -> PrefixConfig:
    """``base`` with the keys ``override`` sets (a model's over ``routing:``'s)."""
    if override is None or not override.model_fields_set:
        return base
    return base.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})
