"""OpenAI's attribute filters, evaluated on a file's ``attributes``.

A comparison filter is ``{"key", "type", "value"}`` with ``type`` one of
``eq``, ``ne``, ``gt``, ``gte``, ``lt``, ``lte``, ``in``, ``nin``; a compound
filter is ``{"type": "and" | "or", "filters": [...]}``, nested freely. Values
compare within their own type: numbers with numbers (``true`` is not ``1``),
strings with strings (ordered as strings), booleans by equality only. An
attribute a file lacks, or one of another type than the value, matches only
``ne`` and ``nin``.

Attributes belong to a vector store's files, not to their chunks, so a
search evaluates the filter once per file of the store and asks the vector
database only for the chunks of the files that match (``matching_files``).
Filters come here validated (``gateway.api.knowledge_protocol``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Attributes = Mapping[str, str | float | bool]
Filter = Mapping[str, Any]
_ORDERED = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "other"


def _same(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and a == b


def matches(condition: Filter, attributes: Attributes) -> bool:
    """Whether a file with these attributes passes the filter."""
    kind = condition["type"]
    if kind == "and":
        return all(matches(f, attributes) for f in condition["filters"])
    if kind == "or":
        return any(matches(f, attributes) for f in condition["filters"])
    value = condition["value"]
    if condition["key"] not in attributes:
        return kind in ("ne", "nin")
    actual = attributes[condition["key"]]
    if kind == "eq":
        return _same(actual, value)
    if kind == "ne":
        return not _same(actual, value)
    if kind in ("in", "nin"):
        found = isinstance(value, list) and any(_same(actual, v) for v in value)
        return found if kind == "in" else not found
    ordered = _kind(actual)
    if ordered not in ("number", "string") or ordered != _kind(value):
        return False
    return bool(_ORDERED[kind](actual, value))


def matching_files(
    condition: Filter | None, files: Iterable[tuple[str, Attributes]]
) -> list[str] | None:
    """The ids of the files that pass (None: no filter, every file passes)."""
    if condition is None:
        return None
    return [file_id for file_id, attributes in files if matches(condition, attributes)]
