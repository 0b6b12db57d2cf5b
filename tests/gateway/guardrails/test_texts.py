"""Where the texts of a request are: every one is visited, in order, and
named as OpenAI names the field in an error."""

from __future__ import annotations

from typing import Any

from gateway.guardrails.texts import Where, param_name, rewrite_request


def test_every_text_is_visited_in_order_and_named_by_its_field() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "image_url"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": "c"}}],
            },
        ],
        "input": ["d", {"content": "e"}],
        "instructions": "f",
    }
    seen: list[tuple[str, str]] = []

    def upper(text: str, where: Where) -> str:
        seen.append((text, param_name(where)))
        return text.upper()

    rewrite_request(body, upper)
    assert seen == [
        ("a", "messages[0].content"),
        ("b", "messages[1].content[0].text"),
        ("c", "messages[2].tool_calls[0].function.arguments"),
        ("d", "input[0]"),
        ("e", "input[1].content"),
        ("f", "instructions"),
    ]
    assert body["messages"][1]["content"][0]["text"] == "B"
    assert body["messages"][2]["tool_calls"][0]["function"]["arguments"] == "C"
    assert body["input"] == ["D", {"content": "E"}] and body["instructions"] == "F"
