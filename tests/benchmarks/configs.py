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


# The gateway's configurations under test, by subject name:
#   gateway   an API key with in-memory rate limits (no Redis), the access log to a file
#   plain     no key, no limits: the bare request path (the access log still to a file)
#   deployed  the gateway's, plus the audit log with its default redaction
#   aiohttp   the gateway's, with aiohttp's client as the upstream transport
GATEWAY_VARIANTS = ("gateway", "plain", "deployed", "aiohttp")


def gateway_bench_config(
    upstream_base_url: str,
    upstream_model: str,
    logs: Path,
    variant: str = "gateway",
    redis_url: str | None = None,
) -> dict[str, Any]:
    """models.yaml for the gateway under test: one public model on one upstream,
    configured as ``variant`` says (``GATEWAY_VARIANTS``). Prometheus metrics are
    always on; tracing stays off. With ``redis_url``, limits and Responses state
    live in that Redis, as on a fleet."""
    config = _keyed_config(upstream_base_url, upstream_model, logs / f"{variant}-access.log")
    if redis_url is not None:
        config.update(redis_url=redis_url, state={"backend": "redis"})
    if variant == "plain":
        del config["auth"]
    elif variant == "deployed":
        config["audit"] = {"path": str(logs / "audit.jsonl")}
    elif variant == "aiohttp":
        config["providers"]["upstream"]["transport"] = "aiohttp"
    return config


def _keyed_config(upstream_base_url: str, upstream_model: str, access_log: Path) -> dict[str, Any]:
    return {
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


def with_pii_guardrail(config: dict[str, Any]) -> dict[str, Any]:
    """The bench model with the ``pii`` guardrail masking its requests and its
    answers, and restoring the caller's values."""
    model = config["models"][PUBLIC_MODEL]
    guardrails = {"input": ["pii"], "output": ["pii"]}
    return {
        **config,
        "guardrails": {"pii": {"kind": "pii", "restore_in_response": True}},
        "models": {PUBLIC_MODEL: {**model, "guardrails": guardrails}},
    }


def with_cache(config: dict[str, Any]) -> dict[str, Any]:
    """The bench model cached in memory (``cache: true``: temperature-0 requests)."""
    model = config["models"][PUBLIC_MODEL]
    return {
        **config,
        "cache": {"backend": "memory", "ttl_seconds": 3600},
        "models": {PUBLIC_MODEL: {**model, "cache": True}},
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
