"""How a provider is reached: the ``providers:`` entries of models.yaml, one
variant per adapter ``kind``, and the timeouts every upstream call runs under.

These live with the adapters (the layer that uses them) so that adding a
backend kind touches one adapter module, one line of ``adapters.registry``,
one variant here and one test file. Every model forbids unknown keys.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(Strict):
    """Seconds; ``None`` means no limit for that phase."""

    connect: float | None = 5.0
    first_token: float | None = 60.0
    idle: float | None = 60.0
    total: float | None = 600.0


class _ProviderConnection(Strict):
    """What every provider kind is reached with."""

    api_key: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_connections: int = Field(256, gt=0)


class OpenAIProviderConfig(_ProviderConnection):
    """Any OpenAI-compatible API: OpenAI, DeepSeek, vLLM, Ollama, Groq, ..."""

    kind: Literal["openai"]
    base_url: str
    rename_reasoning: bool = Field(
        False,
        description="Rename vLLM's 'reasoning' field to DeepSeek's 'reasoning_content'",
    )


# OpenAI reasoning_effort -> thinking-token budget, for the kinds that take a budget.
DEFAULT_THINKING_BUDGETS = MappingProxyType(
    {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
)


class _TranslatedProvider(_ProviderConnection):
    """Settings shared by the kinds whose API is not OpenAI's own format."""

    drop_unsupported: bool = Field(
        False,
        description="Drop request fields the API cannot honour instead of answering 400",
    )
    thinking_budgets: dict[str, int] = Field(
        default_factory=DEFAULT_THINKING_BUDGETS.copy,
        description="Thinking-token budget per OpenAI reasoning_effort value",
    )


class AnthropicProviderConfig(_TranslatedProvider):
    """Anthropic's Messages API."""

    kind: Literal["anthropic"]
    base_url: str = "https://api.anthropic.com/v1"
    anthropic_version: str = "2023-06-01"
    default_max_tokens: int = Field(
        4096, gt=0, description="max_tokens sent when the client sets none (Anthropic requires it)"
    )


class GeminiProviderConfig(_TranslatedProvider):
    """Google's Gemini API (generateContent)."""

    kind: Literal["gemini"]
    base_url: str = "https://generativelanguage.googleapis.com/v1beta"


class AzureProviderConfig(_ProviderConnection):
    """Azure OpenAI: the target's ``model`` is the deployment name."""

    kind: Literal["azure"]
    base_url: str = Field(description="The resource endpoint, https://<resource>.openai.azure.com")
    auth: Literal["api-key", "bearer"] = Field(
        "api-key", description="Send api_key as the api-key header or as an Entra ID bearer token"
    )
    api_version: str = Field("2024-10-21", description="'v1' selects the version-less v1 API")


ProviderConfig = Annotated[
    OpenAIProviderConfig | AnthropicProviderConfig | GeminiProviderConfig | AzureProviderConfig,
    Field(discriminator="kind"),
]
