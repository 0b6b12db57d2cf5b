"""``kind: gemini`` end to end: the official OpenAI SDK talks to the gateway,
which talks to a fake Gemini API that checks what it receives the way the
real one does."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest
from openai import OpenAI

from tests.adapters.support import KEYS, FakeVendor
from tests.helpers import Gateway

LIGHTS = {
    "type": "function",
    "function": {
        "name": "set_light_values",
        "description": "Set brightness and color temperature",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "additionalProperties": False,
        },
    },
}


def test_chat_round_trip(client: OpenAI, gemini: FakeVendor) -> None:
    completion = client.chat.completions.create(
        model="gemini",
        messages=[
            {"role": "developer", "content": "You are a cat."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "Meow."},
            {"role": "user", "content": "how are you"},
        ],
        temperature=0.3,
        top_p=0.9,
        max_tokens=64,
        stop=["END"],
        seed=5,
        presence_penalty=0.1,
    )
    assert completion.model == "gemini"
    assert completion.choices[0].message.content == "gemini: how are you"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 4
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 4
    [received] = gemini.requests()
    assert received["path"] == "/v1beta/models/gemini-test:generateContent"
    assert received["headers"]["x-goog-api-key"] == KEYS["GEMINI_TEST_KEY"]
    assert KEYS["GEMINI_TEST_KEY"] not in str(received["query"])  # never in the URL
    assert received["body"] == {
        "contents": [
            {"role": "user", "parts": [{"text": "hello"}]},
            {"role": "model", "parts": [{"text": "Meow."}]},
            {"role": "user", "parts": [{"text": "how are you"}]},
        ],
        "systemInstruction": {"parts": [{"text": "You are a cat."}]},
        "generationConfig": {
            "temperature": 0.3,
            "topP": 0.9,
            "seed": 5,
            "presencePenalty": 0.1,
            "maxOutputTokens": 64,
            "stopSequences": ["END"],
        },
    }


def test_candidates_json_output_and_images(client: OpenAI, gemini: FakeVendor) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    completion = client.chat.completions.create(
        model="gemini",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
        n=2,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "echo",
                "schema": {"type": "object", "properties": {"echo": {"type": "string"}}},
            },
        },
    )
    assert [c.index for c in completion.choices] == [0, 1]
    assert orjson.loads(completion.choices[1].message.content or "") == {"echo": "describe"}
    config = gemini.last_body()["generationConfig"]
    assert config["candidateCount"] == 2 and config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["properties"] == {"echo": {"type": "string"}}
    parts = gemini.last_body()["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": png}}


def test_tool_call_loop(client: OpenAI, gemini: FakeVendor) -> None:
    first = client.chat.completions.create(
        model="gemini",
        messages=[{"role": "user", "content": "make it cozy"}],
        tools=[LIGHTS],
        tool_choice={"type": "function", "function": {"name": "set_light_values"}},
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    [call] = choice.message.tool_calls
    assert call.function.name == "set_light_values"
    assert orjson.loads(call.function.arguments) == {"query": "make it cozy"}
    body = gemini.last_body()
    assert (
        body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]
        == (LIGHTS["function"]["parameters"])
    )
    assert body["toolConfig"]["functionCallingConfig"] == {
        "mode": "ANY",
        "allowedFunctionNames": ["set_light_values"],
    }
    second = client.chat.completions.create(
        model="gemini",
        messages=[
            {"role": "user", "content": "make it cozy"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"brightness": 20}'},
        ],
        tools=[LIGHTS],
    )
    assert second.choices[0].message.content == 'gemini: {"brightness":20}'
    response_part = gemini.last_body()["contents"][2]["parts"][0]
    assert response_part == {
        "functionResponse": {"name": "set_light_values", "response": {"brightness": 20}}
    }


def test_stream_text_thoughts_and_usage(client: OpenAI, gemini: FakeVendor) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gemini",
            messages=[{"role": "user", "content": "one two three"}],
            reasoning_effort="medium",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert gemini.requests()[-1]["path"] == "/v1beta/models/gemini-test:streamGenerateContent"
    assert gemini.requests()[-1]["query"] == {"alt": "sse"}
    assert gemini.last_body()["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 8192,
        "includeThoughts": True,
    }
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == (
        "Thinking it over."
    )
    assert "".join(d.content or "" for d in deltas) == "gemini: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 4


def test_stream_function_call(client: OpenAI, gemini: FakeVendor) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gemini",
            messages=[{"role": "user", "content": "[tool] lights"}],
            tools=[LIGHTS],
            stream=True,
        )
    )
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert len(calls) == 1 and calls[0].function.name == "set_light_values"
    assert orjson.loads(calls[0].function.arguments or "") == {"query": "[tool] lights"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


@pytest.mark.parametrize(
    ("text", "finish"), [("[blocked] x", "content_filter"), ("[max] x", "length")]
)
def test_finish_reasons(client: OpenAI, gemini: FakeVendor, text: str, finish: str) -> None:
    completion = client.chat.completions.create(
        model="gemini", messages=[{"role": "user", "content": text}]
    )
    assert completion.choices[0].finish_reason == finish


def test_embeddings_single_batch_and_dimensions(client: OpenAI, gemini: FakeVendor) -> None:
    # The SDK asks for base64 and decodes it: the gateway encodes float32 as OpenAI does.
    single = client.embeddings.create(model="gemini-embed", input="hello")
    assert single.model == "gemini-embed"
    assert single.data[0].embedding == [5.0, 0.0, 0.5, 0.5]
    assert gemini.requests()[-1]["path"] == "/v1beta/models/gemini-embedding-001:embedContent"
    batch = client.embeddings.create(model="gemini-embed", input=["hi", "there"], dimensions=3)
    assert [d.embedding for d in batch.data] == [[2.0, 0.0, 0.5], [5.0, 1.0, 0.5]]
    assert batch.usage is not None and batch.usage.prompt_tokens > 0
    assert gemini.requests()[-1]["path"].endswith(":batchEmbedContents")
    assert gemini.last_body()["requests"][0]["outputDimensionality"] == 3
    floats = httpx.post(
        str(client.base_url) + "embeddings",
        json={"model": "gemini-embed", "input": "hey", "encoding_format": "float"},
        timeout=10,
    ).json()
    assert floats["data"][0]["embedding"] == [3.0, 0.0, 0.5, 0.5]


def test_a_field_gemini_cannot_honour_is_a_400_naming_it(
    client: OpenAI, gemini: FakeVendor
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gemini",
            messages=[{"role": "user", "content": "hi"}],
            tools=[LIGHTS],
            parallel_tool_calls=False,
        )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "parallel_tool_calls"
    assert "gemini" in caught.value.message
    assert gemini.requests() == []


def test_vendor_validation_error_is_a_400_with_the_vendor_message(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gemini",
            messages=[{"role": "user", "content": "hi"}],
            stop=["a", "b", "c", "d", "e", "f"],
        )
    assert "stop_sequences: at most 5 are allowed" in caught.value.message


def test_a_wrong_key_is_401(client: OpenAI, vendor_gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model="gemini-wrong-key", messages=[{"role": "user", "content": "hi"}]
        )
    assert "API key not valid" in caught.value.message
    assert "gm-not-the-key" not in vendor_gateway.log()


def test_resource_exhausted_is_429_with_retry_after_from_retry_info(
    vendor_gateway: Gateway, gemini: FakeVendor
) -> None:
    gemini.faults({"status": 429, "retry_delay": "39.5s"})
    response = httpx.post(
        vendor_gateway.base_url + "/chat/completions",
        json={"model": "gemini-limited", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert response.status_code == 429 and response.headers["retry-after"] == "40"


def test_unavailable_is_a_503(vendor_gateway: Gateway, gemini: FakeVendor) -> None:
    gemini.faults({"status": 503})
    response = httpx.post(
        vendor_gateway.base_url + "/chat/completions",
        json={"model": "gemini-unavailable", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "injected fault 503"


def test_a_truncated_stream_ends_with_an_error_not_a_short_answer(
    client: OpenAI, gemini: FakeVendor
) -> None:
    gemini.faults({"truncate": True})
    with pytest.raises(openai.APIError) as caught:
        for _ in client.chat.completions.create(
            model="gemini-truncated", messages=[{"role": "user", "content": "a b c"}], stream=True
        ):
            pass
    assert "before any candidate finished" in caught.value.message
