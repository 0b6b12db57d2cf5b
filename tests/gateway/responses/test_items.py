"""Input items as stored, and items as chat messages."""

from __future__ import annotations

import pytest

from adapters.errors import InvalidRequestError
from gateway.responses.items import chat_messages, input_items
from gateway.responses.tools import default_tool_kinds

KINDS = default_tool_kinds()


def test_a_string_is_one_user_message() -> None:
    [item] = input_items("hello", KINDS)
    assert item["id"].startswith("msg_") and item["status"] == "completed"
    assert item["content"] == [{"type": "input_text", "text": "hello"}]
    assert chat_messages([item], KINDS) == [{"role": "user", "content": "hello"}]


def test_a_tool_turn_becomes_one_assistant_message_and_tool_messages() -> None:
    items = input_items(
        [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "assistant", "content": "Checking."},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": '{"a":1}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "rain"}],
            },
        ],
        KINDS,
    )
    assert [i["id"][:3] for i in items] == ["msg", "msg", "rs_", "msg", "fc_", "fc_", "fco", "fco"]
    assert chat_messages(items, KINDS) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "w", "arguments": '{"a":1}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rain"},
    ]


def test_parts_keep_images_and_files() -> None:
    [item] = input_items(
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,AAAA",
                        "detail": "low",
                    },
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,BBBB",
                        "filename": "a.pdf",
                    },
                ],
            }
        ],
        KINDS,
    )
    [message] = chat_messages([item], KINDS)
    assert message["content"] == [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,BBBB", "filename": "a.pdf"},
        },
    ]


def test_assistant_text_is_output_text_as_stored() -> None:
    [item] = input_items([{"role": "assistant", "content": "earlier answer"}], KINDS)
    assert item["content"] == [{"type": "output_text", "text": "earlier answer", "annotations": []}]


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ([{"type": "computer_call", "id": "x"}], "input[0].type"),
        (
            [{"role": "user", "content": "a"}, {"type": "item_reference", "id": "msg_1"}],
            "input[1].type",
        ),
        (
            [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}],
            "input[0].content[0].file_id",
        ),
        (
            [{"role": "user", "content": [{"type": "input_file", "file_url": "http://x/a.pdf"}]}],
            "input[0].content[0].file_data",
        ),
    ],
)
def test_what_no_backend_takes_is_refused_by_name(value: list, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        input_items(value, KINDS)
    assert caught.value.param == param
