"""OpenAI chat completions and embeddings <-> Google's Gemini API, as pure functions.

Requests: system/developer messages become ``systemInstruction``; user and
tool messages become ``user`` contents, assistant messages ``model`` contents
(same-role neighbours merged); sampling fields go to ``generationConfig``;
tools to ``functionDeclarations`` and ``toolConfig``. Gemini takes JSON Schema
as sent through ``parametersJsonSchema`` and ``responseJsonSchema`` (the
JSON-Schema twins of ``parameters``/``responseSchema``, which accept only an
OpenAPI subset). A field Gemini cannot honour is refused by ``FieldPolicy``,
or dropped when the operator configured it.
"""

from __future__ import annotations

import itertools
import math
import mimetypes
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from adapters.config import DEFAULT_THINKING_BUDGETS
from adapters.errors import GatewayError, InvalidRequestError, UpstreamError
from adapters.translation import (
    HTTP_ERROR_KINDS,
    NEUTRAL_VALUES,
    Body,
    ErrorKind,
    FieldPolicy,
    assistant_message,
    chat_completion,
    header,
    merged_turns,
    output_limit,
    parse_data_url,
    stop_list,
    text_parts,
    tool_arguments,
    tool_call,
    unsupported_function_role,
    vendor_error,
)

PROVIDER = "gemini"

_MAPPED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "response_format",
        "tools",
        "tool_choice",
        "reasoning_effort",
        "stream",
        "stream_options",
    }
)
_GENERATION_FIELDS = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
    ("seed", "seed"),
)
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}


@dataclass(frozen=True, slots=True)
class GeminiOptions:
    thinking_budgets: Mapping[str, int] = field(default_factory=DEFAULT_THINKING_BUDGETS.copy)
    drop_unsupported: bool = False


def model_path(model: str) -> str:
    """``models/<name>``, whether or not the configured name already says ``models/``."""
    return model if model.startswith("models/") else f"models/{model}"


# ---- chat request ------------------------------------------------------------


def to_gemini_request(body: Body, options: GeminiOptions) -> Body:
    """The generateContent request for one OpenAI chat request (the model goes in the URL)."""
    policy = FieldPolicy(PROVIDER, options.drop_unsupported)
    policy.check_fields(body, _MAPPED, NEUTRAL_VALUES)
    system, contents = convert_messages(body["messages"], policy)
    request: Body = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    config = _generation_config(body, options, policy)
    if config:
        request["generationConfig"] = config
    request.update(_tools(body, policy))
    return request


def convert_messages(messages: list[Body], policy: FieldPolicy) -> tuple[list[str], list[Body]]:
    """``(system texts, contents)``; tool results find their function's name by call id."""
    call_names: dict[str, str] = {}

    def turn(role: str, message: Body, where: str) -> tuple[str, list[Body]]:
        if role == "user":
            return "user", _user_parts(message.get("content"), f"{where}.content", policy)
        if role == "assistant":
            return "model", _model_parts(message, where, call_names)
        if role == "tool":
            return "user", [_function_response(message, where, call_names)]
        raise unsupported_function_role(where, PROVIDER)

    return merged_turns(messages, policy, turn, "parts")


def _user_parts(content: str | list[Body] | None, param: str, policy: FieldPolicy) -> list[Body]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[Body] = []
    for index, part in enumerate(content or []):
        where = f"{param}[{index}]"
        kind = part.get("type")
        if kind == "text":
            if part["text"]:
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_image_part(part["image_url"], f"{where}.image_url", policy))
        elif kind == "input_audio":
            audio = part["input_audio"]
            inline = {"mimeType": f"audio/{audio['format']}", "data": audio["data"]}
            parts.append({"inlineData": inline})
        elif kind == "file":
            file_part = _file_part(part["file"], f"{where}.file", policy)
            if file_part is not None:
                parts.append(file_part)
        else:
            policy.unsupported(f"{where}.type", f" for content parts of type '{kind}'")
    return parts


def _image_part(image: Body, param: str, policy: FieldPolicy) -> Body:
    if image.get("detail") not in (None, "auto"):
        policy.unsupported(f"{param}.detail")
    url = str(image["url"])
    inline = parse_data_url(url, f"{param}.url")
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    mime = mimetypes.guess_type(urlsplit(url).path)[0]
    if url.startswith(("http://", "https://")) and mime is not None:
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise InvalidRequestError(
        f"'{param}.url' must be a data URL, or an http(s) URL whose path ends in a known file "
        "extension (Gemini needs the file's type).",
        param=f"{param}.url",
        code="invalid_value",
    )


def _file_part(file: Body, param: str, policy: FieldPolicy) -> Body | None:
    data = file.get("file_data")
    inline = parse_data_url(data, f"{param}.file_data") if isinstance(data, str) else None
    if inline is None:
        policy.unsupported(f"{param}", " except as a data URL in file_data")
        return None
    return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}


def _model_parts(message: Body, where: str, call_names: dict[str, str]) -> list[Body]:
    content = message.get("content")
    if isinstance(content, str):
        texts = [content]
    else:
        texts = [str(part.get("text") or part.get("refusal") or "") for part in content or []]
    parts: list[Body] = [{"text": text} for text in texts if text]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        param = f"{where}.tool_calls[{index}].function.arguments"
        call_names[call["id"]] = function["name"]
        arguments = tool_arguments(function["arguments"], param)
        parts.append({"functionCall": {"name": function["name"], "args": arguments}})
    return parts


def _function_response(message: Body, where: str, call_names: Mapping[str, str]) -> Body:
    call_id = message.get("tool_call_id")
    name = call_names.get(str(call_id))
    if name is None:
        raise InvalidRequestError(
            f"'{where}.tool_call_id' ({call_id!r}) matches no tool call of an earlier assistant "
            f"message; the {PROVIDER} provider needs it to name the function.",
            param=f"{where}.tool_call_id",
            code="invalid_value",
        )
    text = "\n".join(text_parts(message.get("content"), f"{where}.content"))
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    # Gemini takes an object; a JSON object result is sent as is, anything else under "result".
    response = value if isinstance(value, dict) else {"result": text}
    return {"functionResponse": {"name": name, "response": response}}


def _generation_config(body: Body, options: GeminiOptions, policy: FieldPolicy) -> Body:
    config: Body = {
        gemini: body[key] for key, gemini in _GENERATION_FIELDS if body.get(key) is not None
    }
    limit = output_limit(body)
    if limit is not None:
        config["maxOutputTokens"] = limit
    stops = stop_list(body.get("stop"))
    if stops:
        config["stopSequences"] = stops
    if body.get("n") not in (None, 1):
        config["candidateCount"] = body["n"]
    response_format = body.get("response_format") or {"type": "text"}
    if response_format["type"] != "text":
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if response_format["type"] == "json_schema" and schema is not None:
            config["responseJsonSchema"] = schema
    effort = body.get("reasoning_effort")
    if effort == "none":
        config["thinkingConfig"] = {"thinkingBudget": 0}
    elif effort is not None:
        budget = options.thinking_budgets.get(effort)
        if budget is None:
            known = ", ".join(sorted(options.thinking_budgets))
            policy.unsupported("reasoning_effort", f" with the value '{effort}' (known: {known})")
        else:
            config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True}
    return config


def _tools(body: Body, policy: FieldPolicy) -> Body:
    out: Body = {}
    declarations = []
    for index, tool in enumerate(body.get("tools") or []):
        function = tool["function"]
        if function.get("strict"):
            policy.unsupported(f"tools[{index}].function.strict")
        declaration: Body = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters") is not None:
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        out["toolConfig"] = {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
    elif choice is not None:
        calling = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
        out["toolConfig"] = {"functionCallingConfig": calling}
    return out


# ---- chat response -----------------------------------------------------------


def finish_reason(reason: str | None, called_tools: bool) -> str:
    """OpenAI has no counterpart for Gemini's other reasons (OTHER, LANGUAGE, ...): stop."""
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called_tools else "stop"


def split_parts(
    parts: list[Body], new_call_id: Callable[[], str]
) -> tuple[list[str], list[str], list[Body]]:
    """``(texts, thoughts, tool calls)`` of a candidate's parts."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[Body] = []
    for part in parts:
        if "functionCall" in part:
            call = part["functionCall"]
            call_id = str(call.get("id") or new_call_id())
            calls.append(tool_call(call_id, str(call["name"]), call.get("args") or {}))
        elif "text" in part:
            (thoughts if part.get("thought") else texts).append(str(part["text"]))
    return texts, thoughts, calls


def openai_usage(meta: Mapping[str, Any]) -> Body:
    prompt = int(meta.get("promptTokenCount") or 0)
    prompt += int(meta.get("toolUsePromptTokenCount") or 0)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(meta.get("cachedContentTokenCount") or 0)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def call_ids(prefix: str) -> Callable[[], str]:
    """Ids for function calls Gemini sent without one (the client must echo them back)."""
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter)}"


def from_gemini_response(response: Body, created: int, id_prefix: str) -> Body:
    """OpenAI's chat.completion for one generateContent response."""
    new_call_id = call_ids(id_prefix)
    choices: list[Body] = []
    for position, candidate in enumerate(response.get("candidates") or []):
        parts = (candidate.get("content") or {}).get("parts") or []
        texts, thoughts, calls = split_parts(parts, new_call_id)
        choices.append(
            {
                "index": int(candidate.get("index", position)),
                "message": assistant_message(texts, thoughts, calls),
                "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
                "logprobs": None,
            }
        )
    if not choices:
        if not (response.get("promptFeedback") or {}).get("blockReason"):
            raise UpstreamError("Gemini API answered without any candidate")
        # The prompt itself was blocked: OpenAI says so with content_filter.
        message = assistant_message([], [], [])
        choices = [
            {"index": 0, "message": message, "finish_reason": "content_filter", "logprobs": None}
        ]
    choices.sort(key=lambda choice: choice["index"])
    response_id = str(response.get("responseId") or id_prefix.rstrip("_"))
    usage = openai_usage(response.get("usageMetadata") or {})
    model = str(response.get("modelVersion", ""))
    return chat_completion(response_id, created, model, choices, usage)


# ---- errors ------------------------------------------------------------------

_GRPC_STATUSES: dict[str, ErrorKind] = {
    "INVALID_ARGUMENT": "invalid",
    "FAILED_PRECONDITION": "invalid",
    "OUT_OF_RANGE": "invalid",
    "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "permission",
    "NOT_FOUND": "not_found",
    "RESOURCE_EXHAUSTED": "rate_limit",
    "UNAVAILABLE": "overloaded",
    "DEADLINE_EXCEEDED": "timeout",
}
_DELAY = re.compile(r"(\d+(?:\.\d+)?)s")


def error_from_response(status: int, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
    """The gateway error for a Gemini HTTP error answer."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload:  # the streaming endpoint wraps it in an array
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    return error_from_object(error if isinstance(error, dict) else {}, status, headers)


def error_from_object(error: Body, status: int, headers: Mapping[str, str]) -> GatewayError:
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    kind = _GRPC_STATUSES.get(str(error.get("status"))) or HTTP_ERROR_KINDS.get(status)
    if any(detail.get("reason") == "API_KEY_INVALID" for detail in details):
        kind = "auth"  # Gemini answers a bad key with 400 INVALID_ARGUMENT
    if kind is None:
        kind = "invalid" if 400 <= status < 500 else "server"
    retry_after = header(headers, "Retry-After")
    for detail in details:
        delay = _DELAY.fullmatch(str(detail.get("retryDelay", "")))
        if retry_after is None and delay is not None:
            retry_after = str(math.ceil(float(delay.group(1))))
    message = str(error.get("message") or f"Gemini API returned HTTP {status}")
    return vendor_error(kind, message, retry_after)
