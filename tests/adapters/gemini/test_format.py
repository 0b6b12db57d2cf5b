"""The pure OpenAI <-> Gemini API translation of chat requests, responses and
errors, on fixtures shaped like the examples of Google's Gemini API reference
(streams: test_gemini_stream.py; embeddings: test_gemini_embed.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters.errors import InvalidRequestError, UpstreamError
from adapters.gemini.format import (
    GeminiOptions,
    error_from_response,
    from_gemini_response,
    to_gemini_request,
)

OPTIONS = GeminiOptions()
LENIENT = GeminiOptions(drop_unsupported=True)
LIGHTS_TOOL = {
    "type": "function",
    "function": {
        "name": "set_light_values",
        "description": "Sets the brightness and color temperature of a light.",
        "parameters": {
            "type": "object",
            "properties": {
                "brightness": {"type": "integer", "minimum": 0, "maximum": 100},
                "color_temp": {"type": "string", "enum": ["daylight", "cool", "warm"]},
            },
            "required": ["brightness", "color_temp"],
            "additionalProperties": False,
        },
    },
}
JPEG = "/9j/4AAQSkZJRgABAQAAAQABAAD"


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hi"}], **fields}


# ---- requests ----------------------------------------------------------------


def test_roles_system_instruction_and_generation_config() -> None:
    request = to_gemini_request(
        chat(
            messages=[
                {"role": "system", "content": "You are a cat. Your name is Neko."},
                {"role": "user", "content": "Hello there"},
                {"role": "assistant", "content": "Meow."},
                {"role": "user", "content": "How many paws"},
                {"role": "user", "content": [{"type": "text", "text": "do you have?"}]},
            ],
            temperature=1.0,
            top_p=0.8,
            top_k=10,
            max_completion_tokens=800,
            stop=["Title"],
            n=2,
            seed=7,
            presence_penalty=0.5,
            frequency_penalty=0.25,
        ),
        OPTIONS,
    )
    assert request == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hello there"}]},
            {"role": "model", "parts": [{"text": "Meow."}]},
            {"role": "user", "parts": [{"text": "How many paws"}, {"text": "do you have?"}]},
        ],
        "systemInstruction": {"parts": [{"text": "You are a cat. Your name is Neko."}]},
        "generationConfig": {
            "temperature": 1.0,
            "topP": 0.8,
            "topK": 10,
            "maxOutputTokens": 800,
            "stopSequences": ["Title"],
            "candidateCount": 2,
            "seed": 7,
            "presencePenalty": 0.5,
            "frequencyPenalty": 0.25,
        },
    }


def test_images_audio_and_files_become_inline_or_file_data() -> None:
    content = [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG}"}},
        {
            "type": "image_url",
            "image_url": {"url": "https://example.com/photos/cat.png?size=large"},
        },
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"},
        },
    ]
    request = to_gemini_request(chat(messages=[{"role": "user", "content": content}]), OPTIONS)
    assert request["contents"][0]["parts"] == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/jpeg", "data": JPEG}},
        {
            "fileData": {
                "mimeType": "image/png",
                "fileUri": "https://example.com/photos/cat.png?size=large",
            }
        },
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBER"}},
    ]


def test_an_image_url_without_a_known_type_is_refused() -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/render?id=3"}}]
    with pytest.raises(InvalidRequestError) as caught:
        to_gemini_request(chat(messages=[{"role": "user", "content": content}]), OPTIONS)
    assert caught.value.param == "messages[0].content[0].image_url.url"


def test_tools_calls_and_results_become_function_declarations_calls_and_responses() -> None:
    request = to_gemini_request(
        chat(
            tools=[LIGHTS_TOOL],
            tool_choice={"type": "function", "function": {"name": "set_light_values"}},
            messages=[
                {"role": "user", "content": "Dim the lights so the room feels cozy and warm."},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_7",
                            "type": "function",
                            "function": {
                                "name": "set_light_values",
                                "arguments": '{"brightness": 25, "color_temp": "warm"}',
                            },
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": "call_7",
                    "content": '{"brightness": 25, "colorTemperature": "warm"}',
                },
                {"role": "tool", "tool_call_id": "call_7", "content": "done"},
            ],
        ),
        OPTIONS,
    )
    assert request["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "set_light_values",
                    "description": "Sets the brightness and color temperature of a light.",
                    "parametersJsonSchema": LIGHTS_TOOL["function"]["parameters"],
                }
            ]
        }
    ]
    assert request["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["set_light_values"]}
    }
    assert request["contents"][1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {
                    "name": "set_light_values",
                    "args": {"brightness": 25, "color_temp": "warm"},
                }
            }
        ],
    }
    # Function names come from the earlier call; an object result goes as is.
    assert request["contents"][2] == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "name": "set_light_values",
                    "response": {"brightness": 25, "colorTemperature": "warm"},
                }
            },
            {"functionResponse": {"name": "set_light_values", "response": {"result": "done"}}},
        ],
    }


@pytest.mark.parametrize(
    ("tool_choice", "mode"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")]
)
def test_tool_choice_modes(tool_choice: str, mode: str) -> None:
    request = to_gemini_request(chat(tools=[LIGHTS_TOOL], tool_choice=tool_choice), OPTIONS)
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_a_tool_result_for_an_unknown_call_is_refused() -> None:
    messages = [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "nope", "content": "1"},
    ]
    with pytest.raises(InvalidRequestError) as caught:
        to_gemini_request(chat(messages=messages), OPTIONS)
    assert caught.value.param == "messages[1].tool_call_id"


def test_response_format_and_reasoning_effort() -> None:
    schema = {"type": "object", "properties": {"recipe_name": {"type": "string"}}}
    json_schema = {"type": "json_schema", "json_schema": {"name": "recipe", "schema": schema}}
    config = to_gemini_request(chat(response_format=json_schema, reasoning_effort="low"), OPTIONS)[
        "generationConfig"
    ]
    assert config == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
    }
    config = to_gemini_request(
        chat(response_format={"type": "json_object"}, reasoning_effort="none"), OPTIONS
    )["generationConfig"]
    assert config == {
        "responseMimeType": "application/json",
        "thinkingConfig": {"thinkingBudget": 0},
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"user": "u-1"}, "user"),
        ({"service_tier": "flex"}, "service_tier"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {
                                    "url": f"data:image/jpeg;base64,{JPEG}",
                                    "detail": "high",
                                },
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.detail",
        ),
    ],
)
def test_fields_gemini_cannot_honour_are_refused_or_dropped(fields: dict, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        to_gemini_request(chat(**fields), OPTIONS)
    assert caught.value.param == param and caught.value.code == "unsupported_parameter"
    assert "gemini" in caught.value.message
    flat = orjson.dumps(to_gemini_request(chat(**fields), LENIENT)).decode()
    for dropped in ("logprobs", "5", "parallel", "u-1", "flex", "thinking", "detail"):
        assert dropped not in flat


# ---- responses ---------------------------------------------------------------


def test_text_response_with_thoughts_and_usage() -> None:
    response = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "The user asks about AI; keep it short.", "thought": True},
                        {"text": "AI learns patterns from data."},
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}
                ],
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 8,
            "candidatesTokenCount": 274,
            "thoughtsTokenCount": 20,
            "cachedContentTokenCount": 4,
            "totalTokenCount": 302,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mAitaMWbFJ2E3NoP8v2D4Ag",
    }
    result = from_gemini_response(response, created=1700000000, id_prefix="call_x_")
    assert result == {
        "id": "mAitaMWbFJ2E3NoP8v2D4Ag",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gemini-2.5-flash",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "AI learns patterns from data.",
                    "reasoning_content": "The user asks about AI; keep it short.",
                },
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 8,
            "completion_tokens": 294,
            "total_tokens": 302,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 20},
        },
    }


def test_function_call_response_becomes_tool_calls_with_json_arguments() -> None:
    response = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {
                                "name": "set_light_values",
                                "args": {"brightness": 25, "color_temp": "warm"},
                            }
                        },
                        {
                            "functionCall": {
                                "id": "fc_2",
                                "name": "set_light_values",
                                "args": {"brightness": 0},
                            }
                        },
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 40,
            "candidatesTokenCount": 12,
            "totalTokenCount": 52,
        },
    }
    choice = from_gemini_response(response, created=1, id_prefix="call_ab_")["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    first, second = choice["message"]["tool_calls"]
    assert first["id"] == "call_ab_0" and second["id"] == "fc_2"
    assert first["function"]["name"] == "set_light_values"
    assert orjson.loads(first["function"]["arguments"]) == {"brightness": 25, "color_temp": "warm"}


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reason_mapping(reason: str, finish: str) -> None:
    response = {"candidates": [{"index": 0, "finishReason": reason}], "usageMetadata": {}}
    assert from_gemini_response(response, 1, "c_")["choices"][0]["finish_reason"] == finish


def test_several_candidates_become_several_choices() -> None:
    candidates = [
        {
            "index": 1,
            "content": {"role": "model", "parts": [{"text": "B"}]},
            "finishReason": "STOP",
        },
        {
            "index": 0,
            "content": {"role": "model", "parts": [{"text": "A"}]},
            "finishReason": "MAX_TOKENS",
        },
    ]
    choices = from_gemini_response({"candidates": candidates}, 1, "c_")["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "A", "length"),
        (1, "B", "stop"),
    ]


def test_a_blocked_prompt_is_a_content_filter_finish() -> None:
    response = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 9},
    }
    result = from_gemini_response(response, 1, "c_")
    assert result["choices"][0]["finish_reason"] == "content_filter"
    assert result["usage"]["prompt_tokens"] == 9
    with pytest.raises(UpstreamError):
        from_gemini_response({"usageMetadata": {}}, 1, "c_")


# ---- errors ------------------------------------------------------------------


def google_error(code: int, status: str, message: str, details: list | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return orjson.dumps({"error": error})


@pytest.mark.parametrize(
    ("code", "status", "expected", "retryable"),
    [
        (400, "INVALID_ARGUMENT", 400, False),
        (400, "FAILED_PRECONDITION", 400, False),
        (401, "UNAUTHENTICATED", 401, False),
        (403, "PERMISSION_DENIED", 403, False),
        (404, "NOT_FOUND", 404, False),
        (429, "RESOURCE_EXHAUSTED", 429, True),
        (500, "INTERNAL", 502, True),
        (503, "UNAVAILABLE", 503, True),
        (504, "DEADLINE_EXCEEDED", 504, True),
    ],
)
def test_google_errors_map_to_gateway_errors(
    code: int, status: str, expected: int, retryable: bool
) -> None:
    error = error_from_response(code, google_error(code, status, f"vendor: {status}"), {})
    assert (error.status, error.retryable) == (expected, retryable)
    assert error.message == f"vendor: {status}"


def test_an_invalid_api_key_is_401_though_google_says_400() -> None:
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
        }
    ]
    message = "API key not valid. Please pass a valid API key."
    raw = google_error(400, "INVALID_ARGUMENT", message, details)
    error = error_from_response(400, raw, {})
    assert error.status == 401 and error.type == "authentication_error"


def test_retry_info_becomes_retry_after_and_array_wrapped_errors_are_read() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "6.2s"}]
    raw = b"[" + google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", details) + b"]"
    error = error_from_response(429, raw, {})
    assert error.status == 429 and error.headers["Retry-After"] == "7"
    assert error.message == "Quota exceeded."
