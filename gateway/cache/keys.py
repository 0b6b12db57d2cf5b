"""Cache keys: which requests may be cached, and the key of one.

The exact key is the sha256 of the caller's scope, the public model, the
endpoint, streaming or not, and the request body with the fields that do not
change the answer left out (``stream_options``, ``user``, ``metadata``,
``store``, ``service_tier``) and keys sorted. The semantic cache's context
key is the same with the last user message left out: a hit needs the same
model, settings and earlier turns, and a last question that means the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.config.cache import ModelCache

# Request fields that do not change the answer.
IGNORED_FIELDS = frozenset(
    {"stream", "stream_options", "user", "metadata", "store", "service_tier"}
)


@dataclass(frozen=True, slots=True)
class CacheControl:
    no_cache: bool = False  # skip the lookup
    no_store: bool = False  # do not keep the answer


NO_DIRECTIVES = CacheControl()


def cache_control(headers: Mapping[str, str]) -> CacheControl:
    """The request's ``Cache-Control`` directives the cache honours."""
    value = headers.get("Cache-Control")
    if not value:
        return NO_DIRECTIVES
    directives = {part.strip().lower().split("=", 1)[0] for part in value.split(",")}
    return CacheControl("no-cache" in directives, "no-store" in directives)


def eligible(operation: str, body: Mapping[str, Any], mode: ModelCache) -> bool:
    """Whether a request may be answered from (and kept in) the cache: with
    ``cache: true`` only deterministic ones (temperature 0, one choice)."""
    if mode == "always" or operation == "embeddings":
        return True
    for name in ("n", "best_of"):
        value = body.get(name)
        if value is not None and value != 1:
            return False
    return body.get("temperature") == 0


def _digest(parts: list[Any]) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


def normalized(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in IGNORED_FIELDS and v is not None}


def exact_key(scope: str, model: str, operation: str, body: Mapping[str, Any]) -> str:
    return _digest([scope, model, operation, bool(body.get("stream")), normalized(body)])


def last_user_text(body: Mapping[str, Any]) -> tuple[int, str] | None:
    """The index and text of the last user message of a chat request."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = "\n".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "text"
                )
            return (index, content) if isinstance(content, str) and content else None
    return None


def context_key(
    scope: str, model: str, operation: str, body: Mapping[str, Any], question: int
) -> str:
    """The exact key without the question (message ``question``)."""
    rest = normalized(body)
    messages = list(rest["messages"])
    messages[question] = {"role": "user"}
    rest["messages"] = messages
    return _digest(["semantic", scope, model, operation, bool(body.get("stream")), rest])
