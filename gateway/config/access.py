"""The ``auth:`` section of models.yaml: API keys, JWT, admin keys, per-model
limits and request rules. Like the rest of the config, every model forbids
unknown keys. No ``auth:`` (or one with neither keys nor JWT) is an open gateway.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway.config.guardrails import ModelGuardrails

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quota(_Strict):
    """Limits of one caller (key, token) or one model; unset means unlimited."""

    rpm: int | None = Field(None, gt=0, description="Requests per minute")
    tpm: int | None = Field(None, gt=0, description="Tokens (prompt + completion) per minute")
    max_concurrent: int | None = Field(None, gt=0, description="Requests in flight at once")
    max_tokens: int | None = Field(None, gt=0, description="Cap on a request's max_tokens")


class _Secret(_Strict):
    """A key's secret: from the environment (``${VAR}``) or as its sha256, never in clear."""

    name: str = Field(min_length=1)
    key: SecretStr | None = None
    key_sha256: str | None = None

    @field_validator("key_sha256", mode="before")
    @classmethod
    def _hex_digest(cls, value: Any) -> Any:
        # A shortened digest (as in docs: "9f86d081884c7d65...") still loads, so a
        # config copied from an example is accepted; the key then matches nothing
        # and `config_warnings` says so at `check` and at startup.
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be the 64 hex digits of a sha256, as a string (quote it)")
        return value.lower()

    @property
    def usable(self) -> bool:
        """False for a key_sha256 that is not a whole sha256 digest."""
        return self.key_sha256 is None or bool(_HEX_DIGEST.fullmatch(self.key_sha256))

    @model_validator(mode="after")
    def _one_secret(self) -> _Secret:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("a key gives exactly one of 'key' (e.g. ${ENV_VAR}) or 'key_sha256'")
        if self.key is not None and not self.key.get_secret_value():
            raise ValueError("'key' is empty")
        return self

    def digest(self) -> bytes:
        """The sha256 of the secret: all the gateway keeps of it."""
        if self.key is not None:
            return hashlib.sha256(self.key.get_secret_value().encode()).digest()
        assert self.key_sha256 is not None
        if not self.usable:
            # Unmatchable on purpose: no presented key hashes to a 33-byte value.
            return b"\xff" + hashlib.sha256(self.key_sha256.encode()).digest()
        return bytes.fromhex(self.key_sha256)


class ApiKeyConfig(_Secret, Quota):
    models: list[str] = Field(
        default_factory=lambda: ["*"], description="Public model names or glob patterns"
    )
    expires: datetime | date | None = Field(
        None, description="A date means midnight UTC starting that day; naive times are UTC"
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Run for this key's requests, after the model's own (names from guardrails:).
    guardrails: ModelGuardrails | None = None


class AdminKeyConfig(_Secret):
    """A key for the /v1/gateway admin endpoints (list keys, reload)."""


class JwtClaimNames(_Strict):
    """Which claims carry what, for issuers with their own names."""

    subject: str = "sub"
    model_access: str = "model_access"
    rate_limit: str = "rate_limit"
    data_retention: str = "data_retention"


class JwtConfig(_Strict):
    algorithm: Literal["HS256", "RS256", "ES256"]
    secret: SecretStr | None = Field(None, description="HS256 shared secret")
    public_key: str | None = Field(None, description="PEM file (RS256/ES256)")
    jwks_file: str | None = Field(None, description="Local JWKS file (RS256/ES256)")
    audience: str | list[str] | None = None
    issuer: str | None = None
    leeway: float = Field(0.0, ge=0, description="Clock skew allowed on exp/nbf, seconds")
    require_exp: bool = True
    claims: JwtClaimNames = Field(default_factory=JwtClaimNames)
    models: list[str] = Field(
        default_factory=lambda: ["*"], description="Allowed models when a token has no claim"
    )

    @model_validator(mode="after")
    def _key_material(self) -> JwtConfig:
        files = [f for f in (self.public_key, self.jwks_file) if f is not None]
        if self.algorithm == "HS256":
            if self.secret is None or not self.secret.get_secret_value():
                raise ValueError("HS256 needs 'secret'")
            if files:
                raise ValueError("HS256 uses 'secret', not 'public_key' or 'jwks_file'")
        else:
            if len(files) != 1:
                raise ValueError(
                    f"{self.algorithm} needs exactly one of 'public_key' or 'jwks_file'"
                )
            if self.secret is not None:
                raise ValueError(f"{self.algorithm} verifies with a public key, not 'secret'")
        return self


class RequestRules(_Strict):
    """Request hygiene for every caller (the body size limit is server.max_body_bytes)."""

    max_messages: int | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, gt=0, description="Cap on max_tokens for every caller")
    max_tokens_policy: Literal["clamp", "refuse"] = Field(
        "clamp", description="Above a cap: lower max_tokens to it, or answer 400"
    )
    max_n: int | None = Field(None, gt=0, description="Cap on n (and best_of)")


class AuthConfig(_Strict):
    keys: list[ApiKeyConfig] = Field(default_factory=list)
    keys_file: str | None = Field(None, description="YAML list of more keys, same shape")
    jwt: JwtConfig | None = None
    admin_keys: list[AdminKeyConfig] = Field(default_factory=list)
    limits: dict[str, Quota] = Field(default_factory=dict, description="Per public model")
    requests: RequestRules = Field(default_factory=RequestRules)
    redis_failure: Literal["fail_open", "fail_closed"] = Field(
        "fail_open",
        description="Redis unreachable: keep serving with per-replica limits, or answer 503",
    )

    @property
    def open(self) -> bool:
        """Whether anyone may call the models without a credential."""
        return not self.keys and self.jwt is None

    @model_validator(mode="after")
    def _unique_keys(self) -> AuthConfig:
        seen_names: set[str] = set()
        seen_secrets: dict[bytes, str] = {}
        for key in [*self.keys, *self.admin_keys]:
            if key.name in seen_names:
                raise ValueError(f"two keys are named '{key.name}'")
            seen_names.add(key.name)
            digest = key.digest()
            if digest in seen_secrets:
                raise ValueError(f"keys '{seen_secrets[digest]}' and '{key.name}' share a secret")
            seen_secrets[digest] = key.name
        return self


def describe_access(auth: AuthConfig | None, redis: bool) -> list[str]:
    """The ``check`` command's view of the access rules: names and limits, never a secret."""
    if auth is None or auth.open:
        lines = ["auth: OFF (open gateway: anyone who can reach it can call every model)"]
    else:
        lines = ["auth:"]
    for key in auth.keys if auth else []:
        limits = {name: getattr(key, name) for name in Quota.model_fields if getattr(key, name)}
        expires = f" expires={key.expires}" if key.expires else ""
        lines.append(f"  key {key.name}: models={','.join(key.models)} limits={limits}{expires}")
    if auth is not None and auth.jwt is not None:
        lines.append(f"  jwt: {auth.jwt.algorithm} audience={auth.jwt.audience or '-'}")
    if auth is not None and auth.admin_keys:
        lines.append(f"  admin keys: {', '.join(k.name for k in auth.admin_keys)}")
    for model, quota in (auth.limits if auth else {}).items():
        lines.append(f"  model {model}: {quota.model_dump(exclude_none=True)}")
    lines.append("limits: shared through Redis (redis_url set)" if redis else "limits: per replica")
    return lines


def load_jwt_keys(config: JwtConfig, base_dir: Path) -> tuple[Any, dict[str | None, Any]]:
    """The verification key (or the JWKS keys by kid), parsed once; ValueError
    names the setting at fault. Relative paths are relative to models.yaml."""
    if config.secret is not None:
        return config.secret.get_secret_value().encode(), {}
    setting, name = (
        ("public_key", config.public_key)
        if config.public_key is not None
        else ("jwks_file", config.jwks_file)
    )
    assert name is not None
    path = base_dir / name
    try:
        text = path.read_text()
        if setting == "public_key":
            algorithm = jwt.get_algorithm_by_name(config.algorithm)
            return algorithm.prepare_key(text), {}
        jwks = jwt.PyJWKSet.from_json(text)
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ValueError(f"auth.jwt.{setting}: cannot use {path}: {reason}") from exc
    return None, {key.key_id: key.key for key in jwks.keys}
