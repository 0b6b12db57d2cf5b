"""``kind: azure``: Azure OpenAI, which speaks OpenAI's format at its own URLs.

Each deployment has its URL,
``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``,
and the target's ``model`` is the deployment name. ``api_version: v1`` selects
Azure's version-less v1 API (``{endpoint}/openai/v1/...``, the deployment in
the body's ``model``). The key goes in the ``api-key`` header, or as an Entra
ID bearer token with ``auth: bearer``. Everything else is the OpenAI adapter.
"""

from __future__ import annotations

from urllib.parse import quote

from adapters.config import AzureProviderConfig
from adapters.openai import OpenAIAdapter


class AzureAdapter(OpenAIAdapter):
    system = "az.ai.openai"

    def __init__(self, config: AzureProviderConfig) -> None:
        headers = dict(config.headers)
        if config.api_key is not None and config.api_key.get_secret_value():
            secret = config.api_key.get_secret_value()
            if config.auth == "bearer":
                headers["Authorization"] = f"Bearer {secret}"
            else:
                headers["api-key"] = secret
        self._api_version = config.api_version
        self._connect(config, config.base_url, headers)

    def _url(self, path: str, model: str | None) -> str:
        if self._api_version == "v1":
            return f"{self._base}/openai/v1{path}"
        query = f"?api-version={quote(self._api_version)}"
        if model is None:  # resource-level calls (the model list)
            return f"{self._base}/openai{path}{query}"
        return f"{self._base}/openai/deployments/{quote(model, safe='')}{path}{query}"
