"""``kind: anthropic`` end to end: the official OpenAI SDK talks to the gateway,
which talks to a fake Anthropic Messages API that checks what it receives the
way the real one does."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest
from openai import OpenAI

from tests.adapters.support import KEYS, FakeVendor
from tests.helpers import Gateway

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"


def test_chat_round_trip(client: OpenAI, anthropic: FakeVendor) -> None:
    response = client.chat.completions.with_raw_response.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
    )
    completion = response.parse()
    assert response.headers["x-gateway-target"] == "claude/claude-test"
    assert completion.model == "claude"
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "claude: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 3

    [received] = anthropic.requests()
    assert received["path"] == "/v1/messages"
    assert received["headers"]["x-api-key"] == KEYS["ANTHROPIC_TEST_KEY"]
    assert received["headers"]["anthropic-version"] == "2023-06-01"
    assert received["body"] == {
        "model": "claude-test",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "system": [{"type": "text", "text": "Be brief."}],
        "max_tokens": 512,  # the provider's default: Anthropic requires one
    }


def test_same_role_messages_merge_and_images_pass_as_blocks(
    client: OpenAI, anthropic: FakeVendor
) -> None:
    completion = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "user", "content": "first"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "second"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            },
            {"role": "assistant", "content": "noted"},
            {"role": "assistant", "content": "and noted again"},
            {"role": "user", "content": "third"},
        ],
    )
    assert completion.choices[0].message.content == "claude: third"
    messages = anthropic.last_body()["messages"]
    # (The fake also refuses any request whose roles do not alternate.)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in messages[0]["content"]] == ["text", "text", "image", "image"]
    inline = {"type": "base64", "media_type": "image/png", "data": PNG}
    assert messages[0]["content"][2]["source"] == inline
    assert messages[0]["content"][3]["source"] == {
        "type": "url",
        "url": "https://example.com/cat.png",
    }


def test_tool_call_loop(client: OpenAI, anthropic: FakeVendor) -> None:
    first = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "weather in Oslo"}],
        tools=[WEATHER],
        tool_choice="required",
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"query": "weather in Oslo"}
    assert anthropic.last_body()["tool_choice"] == {"type": "any"}
    assert anthropic.last_body()["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]

    second = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "user", "content": "weather in Oslo"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "-3C and snowing"},
        ],
        tools=[WEATHER],
    )
    # The fake refuses a tool_result that does not answer the previous tool_use.
    assert second.choices[0].message.content == "claude: -3C and snowing"
    assert second.choices[0].finish_reason == "stop"


def test_stream_text_with_and_without_usage(client: OpenAI, anthropic: FakeVendor) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "count to three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "claude: count to three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert anthropic.last_body()["stream"] is True

    quiet = list(
        client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "again"}], stream=True
        )
    )
    assert all(c.usage is None for c in quiet) and all(c.choices for c in quiet)


def test_stream_tool_call_argument_deltas(client: OpenAI, anthropic: FakeVendor) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "[tool] weather in Lima"}],
            tools=[WEATHER],
            stream=True,
        )
    )
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert len(calls) > 2  # the header, then the arguments in pieces
    assert calls[0].id == "toolu_fake1" and calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert orjson.loads(arguments) == {"query": "[tool] weather in Lima"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_reasoning_effort_turns_on_thinking(client: OpenAI, anthropic: FakeVendor) -> None:
    completion = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "think"}], reasoning_effort="low"
    )
    message = completion.choices[0].message
    assert (message.model_extra or {})["reasoning_content"] == "Let me think this over."
    assert message.content == "claude: think"
    body = anthropic.last_body()
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 512 + 2048

    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "think"}],
            reasoning_effort="low",
            stream=True,
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == (
        "Let me think this over."
    )


def test_stop_max_tokens_and_finish_reasons(client: OpenAI, anthropic: FakeVendor) -> None:
    completion = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "alpha STOP beta"}],
        stop=["STOP"],
        max_completion_tokens=50,
    )
    assert completion.choices[0].message.content == "claude: alpha "
    assert completion.choices[0].finish_reason == "stop"
    assert anthropic.last_body()["stop_sequences"] == ["STOP"]
    assert anthropic.last_body()["max_tokens"] == 50
    cut = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "[max] long story"}]
    )
    assert cut.choices[0].finish_reason == "length"
    cached = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "[cached] hi"}]
    )
    assert cached.usage is not None and cached.usage.prompt_tokens_details is not None
    assert cached.usage.prompt_tokens_details.cached_tokens == 7


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"n": 3}, "n"),
        ({"temperature": 1.7}, "temperature"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"seed": 11}, "seed"),
    ],
)
def test_a_field_anthropic_cannot_honour_is_a_400_naming_it(
    client: OpenAI, anthropic: FakeVendor, fields: dict, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}], **fields
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == param and error["code"] == "unsupported_parameter"
    assert param in error["message"] and "anthropic" in error["message"]
    assert anthropic.requests() == []  # refused before anything was sent


def test_drop_unsupported_sends_the_request_without_the_field(
    client: OpenAI, anthropic: FakeVendor
) -> None:
    completion = client.chat.completions.create(
        model="claude-lenient",
        messages=[{"role": "user", "content": "hi"}],
        logprobs=True,
        seed=11,
        temperature=0.5,
    )
    assert completion.choices[0].message.content == "claude: hi"
    body = anthropic.last_body()
    assert "logprobs" not in body and "seed" not in body and body["temperature"] == 0.5


def test_vendor_validation_errors_come_back_as_400_with_the_vendor_message(
    client: OpenAI, anthropic: FakeVendor
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="claude", messages=[{"role": "assistant", "content": "I start"}]
        )
    assert caught.value.status_code == 400
    assert 'first message must use the "user" role' in caught.value.message


def test_a_wrong_key_is_401_and_the_key_never_shows(
    client: OpenAI, vendor_gateway: Gateway
) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model="claude-wrong-key", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 401 and "invalid x-api-key" in caught.value.message
    assert "sk-ant-not-the-key" not in str(caught.value.body)
    assert all(key not in vendor_gateway.log() for key in [*KEYS.values(), "sk-ant-not-the-key"])


def test_rate_limit_is_429_keeping_retry_after(
    vendor_gateway: Gateway, anthropic: FakeVendor
) -> None:
    anthropic.faults({"status": 429, "retry_after": 40})
    response = httpx.post(
        vendor_gateway.base_url + "/chat/completions",
        json={"model": "claude-limited", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "40"
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_overloaded_529_is_a_503(vendor_gateway: Gateway, anthropic: FakeVendor) -> None:
    anthropic.faults({"status": 529, "retry_after": 40})
    response = httpx.post(
        vendor_gateway.base_url + "/chat/completions",
        json={"model": "claude-overloaded", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "40"
    assert response.json()["error"]["message"] == "injected fault 529"


def test_an_error_event_mid_stream_ends_the_stream_with_an_error(
    client: OpenAI, anthropic: FakeVendor
) -> None:
    anthropic.faults({"stream_error": "overloaded_error", "after": 2})
    stream = client.chat.completions.create(
        model="claude-mid-stream",
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content if chunk.choices else None)
    assert received == ["claude:", " one"]  # what came before the error, then the error
    assert "Overloaded" in caught.value.message


def test_completions_and_embeddings_are_not_served_by_anthropic(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="claude", prompt="Once upon")
    assert "/v1/completions" in caught.value.message
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="claude", prompt="Once upon", stream=True)
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="claude", input="hi")
    assert "/v1/embeddings" in caught.value.message
