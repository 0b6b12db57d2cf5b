"""Who is calling: API keys (looked up by the sha256 of what the client sent)
and JWTs, turned into a ``Principal`` that carries its allowed models and quota.

Only digests of the configured secrets are kept; a presented key is hashed,
looked up, and compared in constant time. Per request that is one sha256 and
one dict lookup. JWT verification results are cached by the token's digest
until the token expires (a cache hit is ~50x cheaper than verifying again).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import jwt
from pydantic import ValidationError

from adapters.errors import AuthenticationError
from gateway.access.limits import Scope
from gateway.config.access import (
    AdminKeyConfig,
    ApiKeyConfig,
    AuthConfig,
    JwtConfig,
    Quota,
    load_jwt_keys,
)
from gateway.config.guardrails import ModelGuardrails

PRINCIPAL = "gateway.principal"  # request-scoped Principal, set by the auth middleware
PrincipalKind = Literal["key", "jwt", "admin", "anonymous"]

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or in an x-api-key header."
)
INCORRECT_KEY = "Incorrect API key provided."
_JWT_CACHE_SIZE = 10_000
_KIND_LABELS = {"key": "API key", "jwt": "token", "admin": "admin key", "anonymous": "caller"}


@dataclass(slots=True, frozen=True)
class ModelAccess:
    """Allowed public models: exact names plus globs compiled into one regex, once."""

    patterns: tuple[str, ...]
    names: frozenset[str]
    globs: re.Pattern[str] | None
    everything: bool

    @classmethod
    def compile(cls, patterns: Iterable[str]) -> ModelAccess:
        patterns = tuple(patterns)
        globs = [p for p in patterns if any(c in p for c in "*?[")]
        return cls(
            patterns=patterns,
            names=frozenset(p for p in patterns if p not in globs),
            globs=re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None,
            everything="*" in patterns,
        )

    def allows(self, model: str) -> bool:
        if self.everything or model in self.names:
            return True
        return self.globs is not None and self.globs.match(model) is not None


NO_MODELS = ModelAccess.compile(())
ALL_MODELS = ModelAccess.compile(("*",))


@dataclass(slots=True, eq=False)
class Principal:
    """An authenticated caller (or the anonymous one of an open gateway)."""

    name: str | None  # the key name, "jwt:<subject>", or None when anonymous
    kind: PrincipalKind
    access: ModelAccess
    quota: Quota
    expires_at: float | None = None  # unix time
    metadata: dict[str, Any] = field(default_factory=dict)
    data_retention: Any = None
    guardrails: ModelGuardrails | None = None  # a key's own, run after the model's
    # Derived once here, not per request: how messages name it ("API key 'team-a'")
    # and the limiter scope of its counters (None: not counted).
    label: str = field(init=False)
    limit_scope: Scope | None = field(init=False)

    def __post_init__(self) -> None:
        self.label = f"{_KIND_LABELS[self.kind]} '{self.name}'"
        if self.name is None:
            self.limit_scope = None
        else:  # JWT names already read "jwt:<subject>"
            counters = self.name if self.kind == "jwt" else f"{self.kind}:{self.name}"
            self.limit_scope = Scope(counters, self.label, self.quota)

    @property
    def scope(self) -> str | None:
        return None if self.limit_scope is None else self.limit_scope.name

    def describe(self) -> dict[str, Any]:
        """What /v1/gateway/keys shows about it: never a secret."""
        described: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "models": list(self.access.patterns),
            "limits": self.quota.model_dump(),
            "expires": None
            if self.expires_at is None
            else datetime.fromtimestamp(self.expires_at, UTC).isoformat(),
            "metadata": self.metadata,
        }
        if self.kind == "jwt":
            described["data_retention"] = self.data_retention
        return described


def expiry_timestamp(expires: datetime | date | None) -> float | None:
    if expires is None:
        return None
    if not isinstance(expires, datetime):
        expires = datetime(expires.year, expires.month, expires.day)
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires.timestamp()


def key_principal(key: ApiKeyConfig | AdminKeyConfig) -> Principal:
    if isinstance(key, AdminKeyConfig):
        return Principal(key.name, "admin", NO_MODELS, Quota())
    quota = Quota(
        rpm=key.rpm, tpm=key.tpm, max_concurrent=key.max_concurrent, max_tokens=key.max_tokens
    )
    return Principal(
        key.name,
        "key",
        ModelAccess.compile(key.models),
        quota,
        expires_at=expiry_timestamp(key.expires),
        metadata=dict(key.metadata),
        guardrails=key.guardrails,
    )


def bearer_credential(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header value."""
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return credential.strip() or None
    return None


class JwtVerifier:
    """Verifies tokens of one issuer configuration; caches what it verified."""

    def __init__(self, config: JwtConfig, base_dir: Path) -> None:
        self.config = config
        self._algorithms = [config.algorithm]
        self._default_access = ModelAccess.compile(config.models)
        self._options: dict[str, Any] = {
            "require": ["exp"] if config.require_exp else [],
            "verify_aud": config.audience is not None,
        }
        self._key, self._jwks = load_jwt_keys(config, base_dir)
        self._cache: dict[bytes, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(digest)
        now = time.time()
        if cached is not None:
            if now < cached[1]:
                return cached[0]
            del self._cache[digest]
        claims = self._decode(token)
        principal = self._principal(claims, digest)
        if len(self._cache) >= _JWT_CACHE_SIZE:
            self._cache.clear()  # bounded memory; the next requests simply verify again
        exp = claims.get("exp")
        until = float(exp) + self.config.leeway if isinstance(exp, int | float) else float("inf")
        self._cache[digest] = (principal, until)
        return principal

    def _signing_key(self, token: str) -> Any:
        if self._key is not None:
            return self._key
        kid = jwt.get_unverified_header(token).get("kid")
        if kid in self._jwks:
            return self._jwks[kid]
        if kid is None and len(self._jwks) == 1:
            return next(iter(self._jwks.values()))
        raise AuthenticationError("The token's key id (kid) is not in the configured JWKS.")

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self._signing_key(token),
                algorithms=self._algorithms,
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway,
                options=self._options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("The token has expired.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthenticationError("The token is not valid yet (nbf).") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationError("The token's audience is not this gateway.") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationError("The token's issuer is not trusted.") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationError("The token's signature is invalid.") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"The token has no '{exc.claim}' claim.") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationError("The token is invalid.") from exc

    def _principal(self, claims: dict[str, Any], digest: bytes) -> Principal:
        names = self.config.claims
        subject = claims.get(names.subject)
        access = self._default_access
        models = claims.get(names.model_access)
        if isinstance(models, str):
            models = models.replace(",", " ").split()
        if models is not None:
            if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
                raise AuthenticationError(
                    f"The token's '{names.model_access}' claim must be a list of model names."
                )
            access = ModelAccess.compile(models)
        try:
            quota = Quota.model_validate(claims.get(names.rate_limit) or {})
        except ValidationError as exc:
            raise AuthenticationError(
                f"The token's '{names.rate_limit}' claim must be an object with positive "
                "integer rpm, tpm, max_concurrent or max_tokens."
            ) from exc
        exp = claims.get("exp")
        return Principal(
            f"jwt:{subject if subject is not None else digest.hex()[:16]}",
            "jwt",
            access,
            quota,
            expires_at=float(exp) if isinstance(exp, int | float) else None,
            data_retention=claims.get(names.data_retention),
        )


class Authenticator:
    """The key table and JWT verifier of one config; replaced whole on reload."""

    def __init__(self, auth: AuthConfig | None, base_dir: Path) -> None:
        self.open = auth is None or auth.open
        self.anonymous = Principal(None, "anonymous", ALL_MODELS, Quota())
        self.keys: list[Principal] = []
        self._by_digest: dict[bytes, tuple[bytes, Principal]] = {}
        self.jwt: JwtVerifier | None = None
        if auth is None:
            return
        table: list[ApiKeyConfig | AdminKeyConfig] = [*auth.keys, *auth.admin_keys]
        for key in table:
            principal = key_principal(key)
            digest = key.digest()
            self._by_digest[digest] = (digest, principal)
            self.keys.append(principal)
        if auth.jwt is not None:
            self.jwt = JwtVerifier(auth.jwt, base_dir)

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        credential = bearer_credential(headers.get("Authorization")) or headers.get("x-api-key")
        if not credential:
            if self.open:
                return self.anonymous
            raise AuthenticationError(MISSING_KEY)
        digest = hashlib.sha256(credential.encode()).digest()
        found = self._by_digest.get(digest)
        if found is not None and hmac.compare_digest(found[0], digest):
            principal = found[1]
            if principal.expires_at is not None and time.time() >= principal.expires_at:
                raise AuthenticationError(f"The API key '{principal.name}' has expired.")
            return principal
        if self.jwt is not None and credential.count(".") == 2:
            return self.jwt.verify(credential)
        if self.open:
            return self.anonymous
        raise AuthenticationError(INCORRECT_KEY)
