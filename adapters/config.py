"""How a provider is reached: the ``providers:`` entries of models.yaml, one
variant per adapter ``kind``, and the timeouts every upstream call runs under.

These live with the adapters (the layer that uses them) so that adding a
backend kind touches one adapter module, one line of ``adapters.registry``,
one variant here and one test file. Every model forbids unknown keys.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# RFC 9110's token: the characters a header name may hold.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(Strict):
    """Seconds; ``None`` means no limit for that phase."""

    connect: float | None = 5.0
    first_token: float | None = 60.0
    idle: float | None = 60.0
    total: float | None = 600.0


class TLSConfig(Strict):
    """How an https upstream is verified, and the client certificate shown to it.

    The system's trust store (which honours ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR``) is always loaded; ``ca_bundle`` adds a private CA to it."""

    ca_bundle: str | None = Field(None, description="PEM file of extra CAs to trust")
    client_cert: str | None = Field(None, description="PEM client certificate (mutual TLS)")
    client_key: str | None = Field(None, description="Its private key, if not in client_cert")
    verify: bool = Field(True, description="false: accept any certificate (testing only)")

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TLSConfig:
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("'client_key' needs 'client_cert'")
        return self


TransportKind = Literal["lean", "aiohttp"]
DEFAULT_KEEPALIVE_EXPIRY = 4.0  # below uvicorn's 5 s, which vLLM's server runs on
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024


class ConnectionDefaults(Strict):
    """Connection settings a provider may leave to ``routing:`` (the gateway's defaults)."""

    transport: TransportKind = Field(
        "lean", description="lean (the gateway's own HTTP/1.1 client) or aiohttp"
    )
    keepalive_expiry: float = Field(
        DEFAULT_KEEPALIVE_EXPIRY, gt=0, description="Seconds an idle upstream connection is kept"
    )
    max_response_bytes: int = Field(
        DEFAULT_MAX_RESPONSE_BYTES, gt=0, description="A larger body (decompressed): 502"
    )
    max_event_bytes: int = Field(
        DEFAULT_MAX_EVENT_BYTES, gt=0, description="A larger SSE event ends the stream"
    )


class ProviderConnection(ConnectionDefaults):
    """What every provider kind is reached with. Connection settings it does not
    set come from ``routing:`` (``ConnectionDefaults``), then the defaults."""

    api_key: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_connections: int = Field(256, gt=0)
    tls: TLSConfig = Field(default_factory=TLSConfig)
    proxy: str | None = Field(
        None,
        description="http://[user:pass@]host:port for every call; unset: HTTPS_PROXY, "
        "HTTP_PROXY and NO_PROXY from the environment",
    )

    @field_validator("headers")
    @classmethod
    def _one_line_each(cls, headers: dict[str, str]) -> dict[str, str]:
        # A CR or LF would end the header early and let the rest of the value
        # forge headers (or a whole request) on the upstream connection.
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {name!r}: the value holds a line break or NUL")
        return headers

    @field_validator("proxy")
    @classmethod
    def _http_proxy(cls, proxy: str | None) -> str | None:
        if proxy is not None and not proxy.startswith("http://"):
            raise ValueError("a proxy is an http:// URL (CONNECT tunnels https upstreams)")
        return proxy

    def with_defaults(self, defaults: ConnectionDefaults) -> Self:
        """This provider, its unset connection settings taken from ``defaults``."""
        unset = {
            name: getattr(defaults, name)
            for name in ConnectionDefaults.model_fields
            if name not in self.model_fields_set and name in defaults.model_fields_set
        }
        return self.model_copy(update=unset) if unset else self


class OpenAIProviderConfig(ProviderConnection):
    """Any OpenAI-compatible API: OpenAI, DeepSeek, vLLM, Ollama, Groq, ..."""

    kind: Literal["openai"]
    base_url: str
    rename_reasoning: bool = Field(
        False,
        description="Rename vLLM's 'reasoning' field to DeepSeek's 'reasoning_content'",
    )
    continuation: bool = Field(
        False,
        description="The server continues an unfinished assistant message "
        "(vLLM's continue_final_message): a stream broken elsewhere can finish here; "
        "it also counts a stream's tokens on every chunk when asked "
        "(vLLM's stream_options.continuous_usage_stats)",
    )


# OpenAI reasoning_effort -> thinking-token budget, for the kinds that take a budget.
DEFAULT_THINKING_BUDGETS = MappingProxyType(
    {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
)


class _TranslatedProvider(ProviderConnection):
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


class AzureProviderConfig(ProviderConnection):
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
