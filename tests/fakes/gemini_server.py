"""A fake of Google's Gemini API (v1beta) for tests, following its documented wire format.

Run it as a process: ``python -m tests.fakes.gemini_server --port P --api-key K [--name N]``.

Routes: ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent``
(``?alt=sse``: SSE; without it, a JSON array), ``:embedContent``,
``:batchEmbedContents``; ``GET /v1beta/models``.

It checks requests as the real API does and answers errors in Google's shape
(``{"error": {"code", "message", "status", "details"}}``): the
``x-goog-api-key`` header (a missing key is 403 PERMISSION_DENIED, a wrong one
400 INVALID_ARGUMENT with reason API_KEY_INVALID), unknown fields anywhere it
knows the schema ("Invalid JSON payload received. Unknown name ..."), roles
user/model only, non-empty parts holding exactly one kind of data,
functionResponse with a name and an object response, temperature in 0..2, at
most 5 stop sequences, JSON schema only with a JSON mime type, batch requests
naming the URL's model.

It answers ``"<name>: <last user text>"`` (or the function response's JSON), with a
thought part first when ``includeThoughts`` is set, a ``functionCall`` when
tools are declared and the mode is ANY (or the text says ``[tool]``), JSON
``{"echo": ...}`` for a JSON mime type, ``candidateCount`` candidates.
``[blocked]`` finishes with SAFETY, ``[max]`` with MAX_TOKENS, ``[cached]``
reports 5 cached tokens. Embeddings are ``[len(text), index, 0.5, ...]`` cut
to ``outputDimensionality`` (default 4).

Faults (``POST /_faults``), one per request: ``{"status": 503}`` (UNAVAILABLE),
``{"status": 429, "retry_delay": "7s"}`` (RESOURCE_EXHAUSTED with RetryInfo),
``{"truncate": true}`` (the stream ends before any finishReason).
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai_server import STATE
from tests.fakes.vendor import json_response, new_app, next_fault, record

Body = dict[str, Any]
_STATUSES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
}
_CONFIG_FIELDS = {
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "responseLogprobs",
    "logprobs",
}
_DATA_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}


def error(status: int, message: str, details: list[Body] | None = None) -> web.Response:
    payload = {"code": status, "message": message, "status": _STATUSES.get(status, "INTERNAL")}
    if details:
        payload["details"] = details
    return json_response({"error": payload}, status)


def _invalid(path: str, message: str) -> str:
    return f"* GenerateContentRequest.{path}: {message}"


def _unknown(name: str, where: str = "") -> str:
    at = f" at '{where}'" if where else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'


def _check_contents(contents: Any) -> str | None:
    if not isinstance(contents, list) or not contents:
        return _invalid("contents", "contents is not specified")
    for index, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return "Please use a valid role: user, model."
        parts = content.get("parts") or []
        if not parts:
            return _invalid(f"contents[{index}].parts", "contents.parts must not be empty.")
        for position, part in enumerate(parts):
            where = f"contents[{index}].parts[{position}]"
            data = [key for key in part if key in _DATA_FIELDS]
            if len(data) != 1 or set(part) - _DATA_FIELDS - {"thought", "thoughtSignature"}:
                return _invalid(f"{where}.data", "oneof field 'data' must have one value")
            response = part.get("functionResponse") or {"name": "-", "response": {}}
            if not (response.get("name") and isinstance(response.get("response"), dict)):
                return _invalid(f"{where}.function_response", "name and response are required")
            inline = part.get("inlineData") or {"mimeType": "-", "data": "-"}
            if not (inline.get("mimeType") and inline.get("data")):
                return _invalid(f"{where}.inline_data", "mime_type and data are required")
    return None


def _check_config(config: Body) -> str | None:
    for key in config:
        if key not in _CONFIG_FIELDS:
            return _unknown(key, "generation_config")
    if not 0 <= config.get("temperature", 1) <= 2:
        return _invalid("generation_config.temperature", "must be in [0.0, 2.0]")
    if len(config.get("stopSequences") or []) > 5:
        return _invalid("generation_config.stop_sequences", "at most 5 are allowed")
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if schema is not None and config.get("responseMimeType") != "application/json":
        return _invalid("generation_config.response_mime_type", "a schema needs JSON output")
    return None


def _check_tools(body: Body) -> str | None:
    for tool in body.get("tools") or []:
        for declaration in tool.get("functionDeclarations") or []:
            if not declaration.get("name"):
                return _invalid("tools.function_declarations.name", "Name cannot be empty.")
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                return "parameters and parametersJsonSchema are mutually exclusive"
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if calling and calling.get("mode") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        return _invalid("tool_config.function_calling_config.mode", "invalid mode")
    if calling.get("allowedFunctionNames") and calling.get("mode") != "ANY":
        return "allowed_function_names may be set only when mode is ANY"
    return None


def check_auth(request: web.Request) -> web.Response | None:
    key = request.headers.get("x-goog-api-key")
    if key is None:
        return error(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )
    if key != request.app[STATE]["api_key"]:
        detail = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
        }
        return error(400, "API key not valid. Please pass a valid API key.", [detail])
    return None


def check_generate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    for key in body:
        if key not in _REQUEST_FIELDS:
            return _unknown(key)
    system = body.get("systemInstruction")
    if system is not None and any(set(p) != {"text"} for p in system.get("parts") or [{}]):
        return _invalid("system_instruction", "only text parts are supported")
    return (
        _check_contents(body.get("contents"))
        or _check_config(body.get("generationConfig") or {})
        or _check_tools(body)
    )


def _last_user_text(contents: list[Body]) -> str:
    texts = []
    for part in contents[-1]["parts"]:
        if "text" in part:
            texts.append(part["text"])
        elif "functionResponse" in part:
            texts.append(orjson.dumps(part["functionResponse"]["response"]).decode())
    return " ".join(texts)


def _candidate(name: str, body: Body, index: int) -> Body:
    said = _last_user_text(body["contents"])
    config = body.get("generationConfig") or {}
    parts: list[Body] = []
    if (config.get("thinkingConfig") or {}).get("includeThoughts"):
        parts.append({"text": "Thinking it over.", "thought": True})
    declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = calling.get("mode", "AUTO")
    if declarations and mode != "NONE" and (mode == "ANY" or "[tool]" in said):
        function = (calling.get("allowedFunctionNames") or [declarations[0]["name"]])[0]
        parts.append({"functionCall": {"name": function, "args": {"query": said}}})
    elif config.get("responseMimeType") == "application/json":
        parts.append({"text": orjson.dumps({"echo": said}).decode()})
    else:
        parts.append({"text": f"{name}: {said}"})
    reason = "SAFETY" if "[blocked]" in said else "MAX_TOKENS" if "[max]" in said else "STOP"
    if reason == "SAFETY":
        return {"index": index, "finishReason": reason, "safetyRatings": []}
    return {"index": index, "content": {"role": "model", "parts": parts}, "finishReason": reason}


def answer(name: str, model: str, body: Body) -> Body:
    config = body.get("generationConfig") or {}
    candidates = [_candidate(name, body, i) for i in range(config.get("candidateCount", 1))]
    parts = [p for c in candidates for p in (c.get("content") or {}).get("parts", [])]
    words = sum(len(str(p.get("text", p.get("functionCall"))).split()) for p in parts)
    thinking = (config.get("thinkingConfig") or {}).get("includeThoughts")
    usage = {
        "promptTokenCount": len(orjson.dumps(body["contents"])) // 4,
        "candidatesTokenCount": words,
        "thoughtsTokenCount": 4 if thinking else 0,
        "cachedContentTokenCount": 5 if "[cached]" in _last_user_text(body["contents"]) else 0,
    }
    usage["totalTokenCount"] = usage["promptTokenCount"] + words + usage["thoughtsTokenCount"]
    return {
        "candidates": candidates,
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": "resp_fake",
    }


def _chunks(response: Body, truncate: bool) -> list[Body]:
    """The response as the stream sends it: text word by word, then a last chunk
    with finishReason and usage (and, like the real API, an empty text part)."""
    chunks = []
    for candidate in response["candidates"]:
        for part in (candidate.get("content") or {}).get("parts", []):
            pieces = part["text"].split(" ") if "text" in part else [None]
            for position, piece in enumerate(pieces):
                if piece is None:
                    sent = part
                else:
                    sent = {**part, "text": piece if position == 0 else " " + piece}
                content = {"role": "model", "parts": [sent]}
                chunks.append({"candidates": [{"index": candidate["index"], "content": content}]})
    if not truncate:
        last = []
        for candidate in response["candidates"]:
            ending = {"role": "model", "parts": [{"text": "", "thoughtSignature": "c2ln"}]}
            reason = candidate["finishReason"]
            last.append({"index": candidate["index"], "content": ending, "finishReason": reason})
        chunks.append({"candidates": last, "usageMetadata": response["usageMetadata"]})
    stamp = {"modelVersion": response["modelVersion"], "responseId": "resp_fake"}
    return [{**chunk, **stamp} for chunk in chunks]


async def _stream(request: web.Request, response: Body, truncate: bool) -> web.StreamResponse:
    chunks = _chunks(response, truncate)
    if request.query.get("alt") != "sse":
        return json_response(chunks)
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await stream.prepare(request)
    for chunk in chunks:
        await stream.write(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n")
    return stream


def _vector(text: str, index: int, dimensions: int) -> list[float]:
    return ([float(len(text)), float(index)] + [0.5] * dimensions)[:dimensions]


def _embed(model: str, body: Body, batch: bool) -> web.Response:
    requests = body.get("requests") if batch else [body]
    vectors = []
    for index, item in enumerate(requests or []):
        if batch and item.get("model") != f"models/{model}":
            where = f"* BatchEmbedContentsRequest.requests[{index}].model"
            return error(400, f"{where}: model must be models/{model}")
        parts = (item.get("content") or {}).get("parts") or []
        if not parts or set(item) - {"model", "content", "outputDimensionality", "taskType"}:
            return error(400, _unknown(next(iter(set(item) - {"model", "content"}), "content")))
        text = " ".join(p.get("text", "") for p in parts)
        vectors.append({"values": _vector(text, index, int(item.get("outputDimensionality", 4)))})
    if not vectors:
        return error(400, "* BatchEmbedContentsRequest.requests: requests is empty")
    return json_response({"embeddings": vectors} if batch else {"embedding": vectors[0]})


async def model_call(request: web.Request) -> web.StreamResponse:
    state, body = await record(request)
    refused = check_auth(request)
    if refused is not None:
        return refused
    model, _, method = request.match_info["call"].partition(":")
    if method in ("embedContent", "batchEmbedContents"):
        return _embed(model, body, batch=method == "batchEmbedContents")
    if method not in ("generateContent", "streamGenerateContent"):
        return error(404, f"Method not found: {method}")
    problem = check_generate(body)
    if problem:
        return error(400, problem)
    fault = next_fault(state)
    if "status" in fault:
        details = None
        if "retry_delay" in fault:
            retry_info = "type.googleapis.com/google.rpc.RetryInfo"
            details = [{"@type": retry_info, "retryDelay": fault["retry_delay"]}]
        return error(fault["status"], f"injected fault {fault['status']}", details)
    response = answer(state["name"], model, body)
    if method == "streamGenerateContent":
        return await _stream(request, response, bool(fault.get("truncate")))
    return json_response(response)


async def models(request: web.Request) -> web.Response:
    refused = check_auth(request)
    if refused is not None:
        return refused
    return json_response({"models": [{"name": "models/gemini-test", "displayName": "Gemini Test"}]})


def make_app(name: str, api_key: str) -> web.Application:
    app = new_app(name, api_key)
    app.router.add_post("/v1beta/models/{call}", model_call)
    app.router.add_get("/v1beta/models", models)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--name", default="gemini")
    args = parser.parse_args()
    app = make_app(args.name, args.api_key)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
