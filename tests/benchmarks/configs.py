"""The configurations the benchmark serves, each built in one place.

The gateway is measured as deployed, so ``gateway_bench_config`` is where every
production feature that adds work to the request path gets switched on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

PUBLIC_MODEL = "bench-model"
UPSTREAM_KEY = "sk-bench-upstream"  # what the gateway sends to the upstream
CLIENT_KEY = "sk-bench-client"  # what the driver sends to the gateway
# Limits far above what one core can serve: every request is checked, none refused.
UNREACHABLE_QUOTA = {"rpm": 1_000_000_000, "tpm": 1_000_000_000_000, "max_concurrent": 100_000}
LITELLM_MASTER_KEY = "sk-bench-litellm"


def gateway_bench_config(
    upstream_base_url: str, upstream_model: str, access_log: Path, redis_url: str | None = None
) -> dict[str, Any]:
    """models.yaml for the gateway under test: one public model on one upstream,
    an API key with in-memory rate limits (no Redis), the access log to a file.
    Prometheus metrics are always on; audit and tracing stay off (opt-in features).
    With ``redis_url``, limits and Responses state live in that Redis, as on a fleet."""
    shared = {} if redis_url is None else {"redis_url": redis_url, "state": {"backend": "redis"}}
    return {
        **shared,
        "server": {"host": "127.0.0.1", "access_log": str(access_log)},
        "auth": {
            "keys": [
                {
                    "name": "bench",
                    "key_sha256": hashlib.sha256(CLIENT_KEY.encode()).hexdigest(),
                    **UNREACHABLE_QUOTA,
                }
            ],
            "limits": {PUBLIC_MODEL: UNREACHABLE_QUOTA},
        },
        "providers": {
            "upstream": {
                "kind": "openai",
                "base_url": upstream_base_url,
                "api_key": UPSTREAM_KEY,
            }
        },
        "models": {PUBLIC_MODEL: {"targets": [{"provider": "upstream", "model": upstream_model}]}},
    }


def gateway_client_headers() -> dict[str, str]:
    """Headers a client of the benchmarked gateway sends."""
    return {"Authorization": f"Bearer {CLIENT_KEY}"}


def litellm_bench_config(upstream_base_url: str, upstream_model: str) -> dict[str, Any]:
    """LiteLLM proxy's config.yaml for the same upstream, with its master key on."""
    return {
        "model_list": [
            {
                "model_name": PUBLIC_MODEL,
                "litellm_params": {
                    "model": f"openai/{upstream_model}",
                    "api_base": upstream_base_url,
                    "api_key": UPSTREAM_KEY,
                },
            }
        ],
        "general_settings": {"master_key": LITELLM_MASTER_KEY},
    }


def litellm_client_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {LITELLM_MASTER_KEY}"}
