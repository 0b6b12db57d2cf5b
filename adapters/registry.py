"""Backend adapters, one module per ``kind:`` of models.yaml.

``build_adapter`` looks the kind up in ``REGISTRY``; adding a backend kind is
one module, one line here, and one config variant in ``adapters.config``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.anthropic.adapter import AnthropicAdapter
from adapters.azure import AzureAdapter
from adapters.base import Adapter
from adapters.gemini.adapter import GeminiAdapter
from adapters.openai import OpenAIAdapter

AdapterFactory = Callable[[Any], Adapter]

REGISTRY: dict[str, AdapterFactory] = {
    "openai": OpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "azure": AzureAdapter,
}


def build_adapter(provider: Any) -> Adapter:
    """Create the adapter for one provider config (inside the app's lifespan;
    it connects on first use)."""
    return REGISTRY[provider.kind](provider)


__all__ = ["REGISTRY", "Adapter", "build_adapter"]
