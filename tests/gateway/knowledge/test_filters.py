"""OpenAI's attribute filters on file attributes."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.knowledge.filters import matches, matching_files

FILE = {"topic": "tea", "year": 2024, "score": 4.5, "public": True}


def eq(key: str, value: Any, kind: str = "eq") -> dict[str, Any]:
    return {"type": kind, "key": key, "value": value}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (eq("topic", "tea"), True),
        (eq("topic", "coffee"), False),
        (eq("topic", "coffee", "ne"), True),
        (eq("year", 2024.0), True),  # numbers compare as numbers
        (eq("year", "2024"), False),  # not as strings
        (eq("public", True), True),
        (eq("public", 1), False),  # true is not 1
        (eq("year", 2020, "gt"), True),
        (eq("year", 2024, "gte"), True),
        (eq("year", 2024, "lt"), False),
        (eq("score", 4.5, "lte"), True),
        (eq("topic", "tz", "lt"), True),  # strings order as strings
        (eq("topic", 3, "gt"), False),  # another type never orders
        (eq("public", False, "gt"), False),
        (eq("year", [2023, 2024], "in"), True),
        (eq("topic", ["coffee"], "in"), False),
        (eq("topic", ["coffee"], "nin"), True),
        (eq("missing", "x"), False),
        (eq("missing", "x", "ne"), True),
        (eq("missing", ["x"], "nin"), True),
        (eq("missing", 1, "gt"), False),
        ({"type": "and", "filters": [eq("topic", "tea"), eq("year", 2025, "lt")]}, True),
        ({"type": "and", "filters": [eq("topic", "tea"), eq("year", 2025, "gt")]}, False),
        ({"type": "or", "filters": [eq("topic", "x"), eq("public", True)]}, True),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "and", "filters": [eq("topic", "x"), eq("public", True)]},
                    {"type": "and", "filters": [eq("topic", "tea"), eq("score", 5, "lt")]},
                ],
            },
            True,
        ),
    ],
)
def test_matches(condition: dict[str, Any], expected: bool) -> None:
    assert matches(condition, FILE) is expected


def test_matching_files() -> None:
    files = [("a", {"n": 1}), ("b", {"n": 2}), ("c", {})]
    assert matching_files(None, files) is None
    assert matching_files(eq("n", 1, "gte"), files) == ["a", "b"]
    assert matching_files(eq("n", 5), files) == []
