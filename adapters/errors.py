"""The gateway's one exception tree.

Every error a client can see is a ``GatewayError``: it knows its HTTP status,
its OpenAI error ``type`` and optional ``param``/``code``, and renders itself
in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``.

    GatewayError                       500 server_error
    ├── InvalidRequestError            400 invalid_request_error
    │   ├── ContextLengthError         400 invalid_request_error (code context_length_exceeded)
    │   └── ContentPolicyError         400 invalid_request_error (code content_policy_violation)
    ├── AuthenticationError            401 authentication_error
    ├── PermissionDeniedError          403 permission_error
    ├── NotFoundError                  404 invalid_request_error
    │   └── ModelNotFoundError         404 invalid_request_error (code model_not_found)
    ├── RequestTimeoutError            408 invalid_request_error (headers not sent in time)
    ├── PayloadTooLargeError           413 invalid_request_error
    ├── HeadersTooLargeError           431 invalid_request_error
    ├── RateLimitError                 429 rate_limit_error (+ Retry-After)
    └── UpstreamError                  502 upstream_error
        ├── UpstreamStatusError        the upstream's own 4xx/5xx, kept as it said it
        ├── UpstreamUnavailableError   503 service_unavailable (+ Retry-After)
        └── UpstreamTimeoutError       504 timeout

``ConfigError`` and ``EngineStartError`` are separate: they never reach a client.
"""

from __future__ import annotations

from typing import Any

import orjson


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers: dict[str, str] = headers or {}

    @property
    def retryable(self) -> bool:
        """Whether another attempt (maybe on another target) could succeed."""
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


class InvalidRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"


class ContextLengthError(InvalidRequestError):
    default_code = "context_length_exceeded"


class ContentPolicyError(InvalidRequestError):
    """A guardrail refused the request or the answer. The message names the
    guardrail, never the text that matched."""

    default_code = "content_policy_violation"


class AuthenticationError(GatewayError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    type = "permission_error"


class NotFoundError(GatewayError):
    status = 404
    type = "invalid_request_error"


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"


class PayloadTooLargeError(GatewayError):
    status = 413
    type = "invalid_request_error"
    default_code = "request_too_large"


class RequestTimeoutError(GatewayError):
    status = 408
    type = "invalid_request_error"
    default_code = "request_timeout"


class HeadersTooLargeError(GatewayError):
    status = 431
    type = "invalid_request_error"
    default_code = "request_header_fields_too_large"


class RateLimitError(GatewayError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """The backend failed; the client did nothing wrong."""

    status = 502
    type = "upstream_error"
    default_code = "bad_gateway"

    @property
    def retryable(self) -> bool:
        return True


class UpstreamStatusError(UpstreamError):
    """An HTTP error answer from the backend.

    4xx answers are the client's fault and keep their status and message;
    5xx answers become 502 unless they are 503/504, which keep their meaning.
    """

    RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

    def __init__(
        self,
        upstream_status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code, headers=headers)
        self.upstream_status = upstream_status
        if upstream_status < 500 or upstream_status in (503, 504):
            self.status = upstream_status
        if type:
            self.type = type
        elif upstream_status < 500:
            self.type = "invalid_request_error"

    @property
    def retryable(self) -> bool:
        return self.upstream_status in self.RETRYABLE_STATUSES


class UpstreamUnavailableError(UpstreamError):
    status = 503
    type = "service_unavailable"
    default_code = "service_unavailable"

    def __init__(
        self, message: str, *, retry_after: float = 1.0, retryable: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self._retryable = retryable
        self.headers.setdefault("Retry-After", str(max(1, round(retry_after))))

    @property
    def retryable(self) -> bool:
        return self._retryable


class UpstreamTimeoutError(UpstreamError):
    status = 504
    type = "timeout"
    default_code = "upstream_timeout"


class ConfigError(Exception):
    """Invalid models.yaml; each line names the YAML path (and line) at fault."""

    def __init__(self, problems: list[str], source: str = "models.yaml") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: invalid configuration\n  " + "\n  ".join(problems))


class EngineStartError(Exception):
    """A local engine cannot be started (unknown vLLM flag, checksum mismatch,
    vLLM missing). Like ``ConfigError`` it never reaches a client: the engine
    is reported as failed and the gateway keeps serving the other models."""
