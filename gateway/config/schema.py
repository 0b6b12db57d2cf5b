"""models.yaml, as typed pydantic models.

Every model forbids unknown keys, so a typo is an error naming its YAML path
rather than a silently ignored setting. Providers are discriminated on
``kind``; their variants live with the adapters (``adapters.config``).
Loading (``${ENV}`` interpolation, YAML line numbers, cross references) lives
in ``gateway.config.loader``.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, SecretStr, model_validator

from adapters.config import ConnectionDefaults, ProviderConfig, Strict, Timeouts
from gateway.config.access import AuthConfig
from gateway.config.cache import CacheConfig, ModelCache
from gateway.config.fleet import EngineLoadConfig, PrefixConfig
from gateway.config.guardrails import GuardrailConfig, ModelGuardrails
from gateway.config.knowledge import KnowledgeConfig
from gateway.config.observability import AuditConfig, TracingConfig
from gateway.config.state import StateConfig


class ServerConfig(Strict):
    """The listening side: where, and every bound a client is held to."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    access_log: str | None = Field(None, description="File for access log lines; stderr if unset")
    drain_seconds: float = Field(30.0, ge=0)
    header_timeout: float = Field(
        10.0, gt=0, description="Seconds to receive a request line and headers (then 408)"
    )
    keepalive_timeout: float = Field(
        75.0, gt=0, description="An idle client connection is closed after this many seconds"
    )
    max_connections: int = Field(
        10_000, gt=0, description="Connections served at once; the rest wait in the backlog"
    )
    max_header_bytes: int = Field(
        32_768, ge=1024, description="A request line and headers larger than this: 431"
    )
    max_json_depth: int = Field(
        128, ge=8, le=1000, description="JSON nested deeper than this in a body: 400"
    )


class EngineConfig(Strict):
    """A local vLLM OpenAI server the gateway launches and supervises."""

    model: str = Field(description="Hub id or local path")
    served_name: str | None = None
    family: Literal["deepseek-r1", "deepseek-v3", "llama3", "qwen2", "embedding"] | None = None
    tensor_parallel_size: int | None = Field(None, ge=1)
    pipeline_parallel_size: int | None = Field(None, ge=1)
    max_model_len: int | None = Field(None, gt=0)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    dtype: str | None = None
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    max_num_seqs: int | None = Field(None, gt=0)
    max_num_batched_tokens: int | None = Field(None, gt=0)
    enable_prefix_caching: bool | None = None
    chat_template: str | None = None
    enforce_eager: bool | None = None
    extra_args: list[str] = Field(default_factory=list)
    replicas: int = Field(1, ge=1, le=64, description="Identical vLLM servers, one process each")
    port: int | None = Field(
        None, ge=1, le=65535, description="Fixed port (replica i: port + i); free ones if unset"
    )
    devices: str | list[str] | None = Field(
        None, description="CUDA_VISIBLE_DEVICES: one entry per replica (a string: one replica)"
    )
    # vLLM's CPU backend reads VLLM_CPU_KVCACHE_SPACE as a whole number of GiB.
    cpu_kvcache_space_gib: int | None = Field(None, ge=1)
    cpu_threads_bind: str | list[str] | None = Field(
        None, description="VLLM_CPU_OMP_THREADS_BIND: one entry per replica, or one for all"
    )
    env: dict[str, str] = Field(default_factory=dict)
    sha256: dict[str, str] = Field(default_factory=dict, description="weight file -> checksum")
    startup_timeout: float = Field(600.0, gt=0)
    max_restarts: int = Field(5, ge=0)
    sampling: dict[str, float | int] = Field(
        default_factory=dict, description="Default sampling that overrides the family preset"
    )
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @model_validator(mode="after")
    def _one_entry_per_replica(self) -> EngineConfig:
        for name in ("devices", "cpu_threads_bind"):
            value = getattr(self, name)
            if isinstance(value, list) and len(value) != self.replicas:
                raise ValueError(
                    f"'{name}' has {len(value)} entries for {self.replicas} replica(s); "
                    "give one per replica"
                )
        if isinstance(self.devices, str) and self.replicas > 1:
            raise ValueError(
                f"'devices' is one string for {self.replicas} replicas; give one entry per "
                "replica, e.g. devices: ['0', '1']"
            )
        if self.port is not None and self.port + self.replicas - 1 > 65535:
            raise ValueError(f"'port' + {self.replicas - 1} (the last replica's) is above 65535")
        return self

    @property
    def name_for_clients(self) -> str:
        return self.served_name or self.model


class TargetConfig(Strict):
    """One backend a public model can be served by: a provider model or a local engine."""

    provider: str | None = None
    engine: str | None = None
    name: str | None = Field(
        None,
        description="How operators see it (X-Gateway-Target, metrics); "
        "default provider/model, or engine/<engine>",
    )
    model: str | None = Field(None, description="Upstream model name (providers)")
    weight: float = Field(1.0, ge=0)
    tier: int = Field(1, ge=1)
    max_concurrency: int | None = Field(None, gt=0, description="Admission limit")
    timeouts: Timeouts | None = None
    sampling: dict[str, float | int] = Field(
        default_factory=dict, description="Request defaults applied when the client sets none"
    )

    @model_validator(mode="after")
    def _one_backend(self) -> TargetConfig:
        if (self.provider is None) == (self.engine is None):
            raise ValueError("a target names exactly one of 'provider' or 'engine'")
        if self.provider is not None and self.model is None:
            raise ValueError("a provider target needs 'model' (the upstream model name)")
        return self


Strategy = Literal["weighted", "round-robin", "least-busy", "latency", "session", "prefix"]
FallbackReason = Literal["error", "context_length", "content_filter"]


class RetryConfig(Strict):
    """Retries of one public model's request across its targets."""

    attempts: int = Field(3, ge=1, description="Attempts in all, the first included")
    backoff_base: float = Field(0.05, ge=0, description="Seconds; doubles each retry, jittered")
    backoff_max: float = Field(2.0, ge=0)
    deadline: float = Field(60.0, gt=0, description="No new attempt after this many seconds")
    max_retry_after: float = Field(10.0, ge=0, description="Longest Retry-After to wait out")


class BreakerConfig(Strict):
    """Circuit breaker per target."""

    failures: int = Field(5, ge=1, description="Consecutive failures that open it")
    error_ratio: float | None = Field(0.5, gt=0, le=1, description="Or this share failing...")
    window: float = Field(30.0, gt=0, description="...over this many seconds...")
    min_requests: int = Field(20, ge=1, description="...once at least this many were seen")
    cooldown: float = Field(10.0, ge=0, description="Open this long before one probe")


class RoutingConfig(ConnectionDefaults):
    """Defaults for every model (a model's own keys override them), and the
    connection settings of every provider that does not set its own."""

    retries: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    health_check_interval: float = Field(10.0, ge=0, description="Seconds; 0 turns checks off")
    max_queue: int = Field(100, ge=0, description="Requests waiting for a busy target")
    queue_timeout: float = Field(5.0, ge=0)
    # Fleet routing (gateway.config.fleet).
    prefix: PrefixConfig = Field(default_factory=PrefixConfig)
    engine_load: EngineLoadConfig = Field(default_factory=EngineLoadConfig)


class ModelConfig(Strict):
    targets: list[TargetConfig] = Field(min_length=1)
    strategy: Strategy = "weighted"
    fallbacks: list[str] = Field(default_factory=list)
    fallback_on: list[FallbackReason] = Field(
        default_factory=lambda: list(get_args(FallbackReason))
    )
    max_model_len: int | None = Field(None, gt=0, description="Context window, if known")
    timeouts: Timeouts | None = None
    retries: RetryConfig | None = None
    prefix: PrefixConfig | None = Field(None, description="Overrides routing.prefix, key by key")
    guardrails: ModelGuardrails | None = None  # names from the guardrails: section
    cache: ModelCache = False  # true: deterministic requests; always: every request
    stream_failover: bool | None = Field(
        None,
        description="A stream that breaks after it started continues on another target "
        "(default: on when the model has more than one target)",
    )


class GatewayConfig(Strict):
    """The whole of models.yaml."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    engines: dict[str, EngineConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    # Access control (gateway.config.access): no auth section is an open gateway.
    auth: AuthConfig | None = None
    redis_url: SecretStr | None = Field(
        None, description="Redis shared by all replicas for rate limits (may hold a password)"
    )
    # Observability (gateway.config.observability): both off unless present.
    audit: AuditConfig | None = None
    tracing: TracingConfig | None = None
    # Guardrails and response caching (gateway.config.guardrails, gateway.config.cache).
    guardrails: dict[str, GuardrailConfig] = Field(default_factory=dict)
    cache: CacheConfig | None = None
    # Responses and Conversations state (gateway.config.state): memory unless redis.
    state: StateConfig = Field(default_factory=StateConfig)
    # Files, vector stores and file_search (gateway.config.knowledge): off unless present.
    knowledge: KnowledgeConfig | None = None

    def provider(self, name: str) -> ProviderConfig:
        """A provider as it is reached: its own settings, ``routing:``'s for the rest."""
        return self.providers[name].with_defaults(self.routing)


# Sections of models.yaml that a reload applies; the rest wait for a restart.
# (``auth`` is swapped by the access control, the others by the routing table's reload.)
RELOADABLE_SECTIONS = ("auth", "providers", "models", "routing", "guardrails")
