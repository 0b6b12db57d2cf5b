"""A small OpenAI-compatible server for tests, with fault injection.

Run it as a process: ``python -m tests.fakes.openai_server --port P [--name N]``.

Behaviour:
- chat/completions answer ``"<name>: <last user text>"`` (streams: one chunk a word);
  ``usage`` is sent unless ``--no-usage``; streams send the usage chunk only when
  ``stream_options.include_usage`` is true; with ``continuous_usage_stats`` (vLLM's)
  every chunk also carries the usage so far (a word is a token).
- ``GET /_requests`` lists the JSON bodies received (with headers), ``POST /_reset``
  clears them; ``GET /_events`` lists events such as ``{"event": "cancelled"}``
  when a client went away mid-response.
- ``POST /_faults`` sets a list of faults consumed one per request, in order:
  ``{"faults": [{"status": 500}, {"status": 429, "retry_after": 1},
  {"hang": 30}, {"hang_mid_stream": 30}, {"drop_mid_stream": true},
  {"malformed": true}, {"drip": 0.05}, {"delay": 0.5}, {"content_filter": true},
  {"drop_after": 3} (a stream's connection closed after 3 pieces),
  {"words_per_piece": 3} (a stream's pieces hold 3 words each, as vLLM's do when its
  client reads behind the engine), {"usage_with_finish": true} (a stream's usage
  comes with its finish chunk, not in a chunk of its own, as some APIs send it),
  {"role_chunk": true} (a stream opens with a role-only chunk, as vLLM's does),
  {"status": 400, "code": "context_length_exceeded", "message": "..."}]}``; ``{"fail_ratio": 0.3}``
  makes that share of requests answer 500 (seeded, so runs repeat).
- ``continue_final_message`` (vLLM's): the answer is what remains of the one
  it would give after the unfinished assistant message that ends the request.
- ``--otlp-endpoint URL``: a request carrying ``traceparent`` gets a span of
  its own, exported there as a child of the caller's (as a traced vLLM does).
- ``GET /metrics`` answers vLLM's load gauges (``vllm:num_requests_running``,
  ``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``) in Prometheus
  text, as a vLLM server does; ``POST /_load`` sets them
  (``{"running": 3, "waiting": 9, "kv_cache_usage": 0.5}``).
- ``--api-key K``: /v1/ calls without ``Authorization: Bearer K`` get OpenAI's 401.
- The last user message may also carry directives for one request:
  ``[slow]`` streams with 0.2 s between chunks; ``[think]`` answers with
  ``REASONING`` as ``reasoning_content`` first (streams: one delta a word),
  as DeepSeek's API and vLLM's reasoning parsers do; ``[length]`` ends with
  ``finish_reason: length``; ``[chunks:A|B|C]`` answers exactly ``ABC`` (no
  name prefix), streamed as the pieces ``A``, ``B``, ``C``.
- Embeddings: ``[0.1, 0.2, index]`` per input; for the model ``words``, a bag of
  words hashed into 64 dimensions (texts sharing words are near), and faults
  apply to those requests too.
- Tools: a ``tool_choice`` naming a function (or ``required``: the first tool)
  is answered with one call of it, arguments ``{"echo": <last user text>}``
  (streamed in two pieces). When the last message is a tool result the answer
  is ``"<name>: tool said <its content>"``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
import zlib
from typing import Any

import orjson
from aiohttp import web

State = dict[str, Any]
STATE = web.AppKey("state", dict)
REASONING = "thinking about it"
WORDS_DIMENSION = 64
CHUNKS = re.compile(r"\[chunks:(.*)\]", re.DOTALL)


def _pieces(text: str) -> list[str] | None:
    """The pieces a ``[chunks:A|B]`` directive asks for."""
    found = CHUNKS.search(text)
    return found.group(1).split("|") if found else None


def _reply_text(name: str, body: dict[str, Any]) -> str:
    if "messages" in body:
        messages = body["messages"]
        if messages and messages[-1].get("role") == "tool":
            return f"{name}: tool said {messages[-1].get('content')}"
        users = [m for m in messages if m.get("role") == "user"]
        content = users[-1].get("content") if users else ""
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    else:
        prompt = body.get("prompt", "")
        content = prompt if isinstance(prompt, str) else str(prompt)
    return f"{name}: {content}"


def _continued(full: str, body: dict[str, Any]) -> str:
    """What is left of ``full`` after the unfinished assistant message a client
    asked to continue (vLLM's ``continue_final_message``); for a text
    completion, after the start of this server's own answer that ends the
    prompt (``"P<name>: P-start"`` continues ``"<name>: P"``)."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        opener = full[: len(full) - len(prompt)]  # "<name>: "
        cut = prompt.find(opener)
        if cut <= 0:
            return full
        answer, started = opener + prompt[:cut], prompt[cut:]
        return answer[len(started) :] if answer.startswith(started) else full
    messages = body.get("messages") or []
    if not (body.get("continue_final_message") and messages):
        return full
    started = messages[-1].get("content") or ""
    return full[len(started) :] if full.startswith(started) else full


def _forced_call(body: dict[str, Any], text: str) -> dict[str, Any] | None:
    """The tool call a request forces (a named tool_choice, or required), if any."""
    choice, tools = body.get("tool_choice"), body.get("tools") or []
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name", "")
    elif choice == "required" and tools:
        name = tools[0]["function"]["name"]
    else:
        return None
    arguments = orjson.dumps({"echo": text.split(": ", 1)[-1]}).decode()
    return {
        "id": f"call_fake_{name}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _finish(text: str, call: dict[str, Any] | None, fault: dict[str, Any]) -> str:
    if call is not None:
        return "tool_calls"
    if fault.get("content_filter"):
        return "content_filter"
    return "length" if "[length]" in text else "stop"


def _usage(body: dict[str, Any], text: str, n: int) -> dict[str, int]:
    prompt = len(orjson.dumps(body.get("messages") or body.get("prompt") or "")) // 4
    completion = len(text.split()) * n
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _next_fault(state: State) -> dict[str, Any]:
    if state["faults"]:
        return state["faults"].pop(0)
    if state["fail_ratio"] and state["rng"].random() < state["fail_ratio"]:
        return {"status": 500}
    return {}


def _error(
    status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None
) -> web.Response:
    payload = {
        "error": {
            "message": message,
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "param": None,
            "code": code,
        }
    }
    return web.Response(
        status=status, body=orjson.dumps(payload), content_type="application/json", headers=headers
    )


async def _record(request: web.Request) -> tuple[State, dict[str, Any] | None]:
    state = request.app[STATE]
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    state["requests"].append(
        {
            "path": request.path,
            "body": body,
            "headers": {str(k).lower(): v for k, v in request.headers.items()},
            "t": time.time(),
        }
    )
    return state, body


async def generate(request: web.Request) -> web.StreamResponse:
    state, body = await _record(request)
    if not isinstance(body, dict) or "model" not in body:
        return _error(400, "body must be a JSON object with a model")
    if body["model"] == "missing-model":
        return _error(404, f"The model '{body['model']}' does not exist.")
    fault = _next_fault(state)
    if "delay" in fault:
        await asyncio.sleep(fault["delay"])
    if "hang" in fault:
        await asyncio.sleep(fault["hang"])
    if "status" in fault:
        headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else None
        message = fault.get("message", f"injected fault {fault['status']}")
        return _error(fault["status"], message, headers, fault.get("code"))
    chat = request.path.endswith("/chat/completions")
    text = _continued(_reply_text(state["name"], body), body)
    pieces = _pieces(text)
    if pieces is not None and not body.get("stream"):
        text = "".join(pieces)
    n = int(body.get("n") or 1)
    if fault.get("malformed") and not body.get("stream"):
        return web.Response(body=b"{not json", content_type="application/json")
    call = _forced_call(body, text) if chat else None
    if body.get("stream"):
        return await _stream(request, state, body, text, n, chat, fault, call)
    if chat:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if "[think]" in text:
            message["reasoning_content"] = REASONING
        if call is not None:
            message.update(content=None, tool_calls=[call])
        choices = [
            {
                "index": i,
                "message": message,
                "finish_reason": _finish(text, call, fault),
                "logprobs": None,
            }
            for i in range(n)
        ]
    else:
        choices = [
            {"index": i, "text": text, "finish_reason": "stop", "logprobs": None} for i in range(n)
        ]
    result: dict[str, Any] = {
        "id": "cmpl-fake",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": choices,
    }
    if state["usage"]:
        result["usage"] = _usage(body, text, n)
    return web.Response(body=orjson.dumps(result), content_type="application/json")


async def _stream(
    request: web.Request,
    state: State,
    body: dict[str, Any],
    text: str,
    n: int,
    chat: bool,
    fault: dict[str, Any],
    call: dict[str, Any] | None = None,
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    # One piece per word, each with the space before it (as a continuation
    # may begin with a space, the first piece keeps its own).
    pieces = _pieces(text)
    if call is not None:
        words: list[str] = []
    else:
        words = pieces if pieces is not None else re.findall(r"\s*\S+", text) or [""]
        merged = int(fault.get("words_per_piece", 1))
        words = ["".join(words[i : i + merged]) for i in range(0, len(words), merged)]
    # vLLM's stream_options.continuous_usage_stats: usage so far on every chunk.
    continuous = bool((body.get("stream_options") or {}).get("continuous_usage_stats"))
    sent = ""
    gap = 0.2 if "[slow]" in text else float(fault.get("drip", 0))
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": body["model"],
    }
    try:
        prelude = _prelude(text, call) if chat else []
        if chat and not prelude and fault.get("role_chunk"):
            prelude = [{"role": "assistant", "content": ""}]
        for piece in prelude:
            choice = {"index": 0, "finish_reason": None, "logprobs": None, "delta": piece}
            await response.write(b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n")
        for position, piece in enumerate(words):
            if position == fault.get("drop_after"):
                assert request.transport is not None
                request.transport.close()  # the connection dies after this many pieces
                return response
            sent += piece
            for index in range(n):
                choice: dict[str, Any] = {"index": index, "finish_reason": None, "logprobs": None}
                if chat:
                    choice["delta"] = (
                        {"role": "assistant", "content": piece}
                        if position == 0 and not prelude
                        else {"content": piece}
                    )
                else:
                    choice["text"] = piece
                chunk = {**base, "choices": [choice]}
                if continuous:
                    chunk["usage"] = _usage(body, sent, n)
                await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            if position == len(words) // 2:
                if "hang_mid_stream" in fault:
                    await asyncio.sleep(fault["hang_mid_stream"])
                if fault.get("drop_mid_stream"):
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if fault.get("malformed"):
                    await response.write(b"data: {broken\n\n")
            if gap:
                await asyncio.sleep(gap)
        for index in range(n):
            finish = _finish(text, call, fault) if chat else "stop"
            end: dict[str, Any] = {"index": index, "finish_reason": finish, "logprobs": None}
            end["delta" if chat else "text"] = {} if chat else ""
            chunk = {**base, "choices": [end]}
            if continuous or fault.get("usage_with_finish"):
                chunk["usage"] = _usage(body, text, n)
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        asked = (body.get("stream_options") or {}).get("include_usage")
        # Some OpenAI-compatible APIs send the usage with the finish chunk instead.
        if state["usage"] and asked and not fault.get("usage_with_finish"):
            usage = _usage(body, text, n)
            await response.write(
                b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
            )
        await response.write(b"data: [DONE]\n\n")
    except (asyncio.CancelledError, ConnectionResetError):
        state["events"].append({"event": "cancelled", "t": time.time()})
        raise
    return response


def _prelude(text: str, call: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Stream deltas before the content: reasoning words, or a tool call in pieces."""
    deltas: list[dict[str, Any]] = []
    if "[think]" in text:
        words = re.findall(r"\s*\S+", REASONING)
        deltas += [{"reasoning_content": word} for word in words]
        deltas[0]["role"] = "assistant"
    if call is not None:
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        head = {**call, "index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
        deltas.append(
            {"tool_calls": [head]} if deltas else {"role": "assistant", "tool_calls": [head]}
        )
        for piece in (arguments[:half], arguments[half:]):
            deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    return deltas


def _words_vector(text: Any) -> list[float]:
    """A bag of words hashed into 64 dimensions: texts sharing words are near."""
    vector = [0.0] * WORDS_DIMENSION
    for word in re.findall(r"[a-z0-9]+", str(text).lower()):
        vector[zlib.crc32(word.encode()) % WORDS_DIMENSION] += 1.0
    vector[0] += 0.01  # never the zero vector
    return vector


async def embeddings(request: web.Request) -> web.Response:
    state, body = await _record(request)
    if not isinstance(body, dict):
        return _error(400, "bad body")
    inputs = body.get("input")
    items = (
        inputs
        if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int)
        else [inputs]
    )
    words = body.get("model") == "words"
    if words:  # faults apply to this model's embeddings only
        fault = _next_fault(state)
        await asyncio.sleep(fault.get("delay", 0))
        if "status" in fault:
            return _error(
                fault["status"], fault.get("message", f"injected fault {fault['status']}")
            )
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _words_vector(item) if words else [0.1, 0.2, float(i)],
        }
        for i, item in enumerate(items)
    ]
    result = {"object": "list", "data": data, "model": body.get("model")}
    if state["usage"]:
        result["usage"] = {"prompt_tokens": 3 * len(items), "total_tokens": 3 * len(items)}
    return web.Response(body=orjson.dumps(result), content_type="application/json")


async def models(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "object": "list",
            "data": [{"id": "m1", "object": "model", "created": 0, "owned_by": "fake"}],
        }
    )


async def control(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.path == "/_requests":
        return web.Response(body=orjson.dumps(state["requests"]), content_type="application/json")
    if request.path == "/_events":
        return web.Response(body=orjson.dumps(state["events"]), content_type="application/json")
    if request.path == "/_reset":
        state["requests"].clear()
        state["events"].clear()
        state["faults"].clear()
        state["fail_ratio"] = 0.0
        return web.json_response({"ok": True})
    payload = await request.json()
    state["faults"].extend(payload.get("faults", []))
    state["fail_ratio"] = float(payload.get("fail_ratio", state["fail_ratio"]))
    return web.json_response({"ok": True})


async def metrics(request: web.Request) -> web.Response:
    load = request.app[STATE]["load"]
    labels = '{engine="0",model_name="m1"}'
    lines = [
        "# HELP vllm:num_requests_running Number of requests in model execution batches.",
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{labels} {float(load.get('running', 0))}",
        "# TYPE vllm:num_requests_waiting gauge",
        f"vllm:num_requests_waiting{labels} {float(load.get('waiting', 0))}",
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f"vllm:kv_cache_usage_perc{labels} {float(load.get('kv_cache_usage', 0))}",
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def set_load(request: web.Request) -> web.Response:
    request.app[STATE]["load"] = await request.json()
    return web.json_response({"ok": True})


def require_key(api_key: str) -> Any:
    """A middleware answering 401, as OpenAI does, to /v1/ calls without ``api_key``."""

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if request.path.startswith("/v1/") and given != f"Bearer {api_key}":
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        return await handler(request)

    return check


def traced(endpoint: str) -> Any:
    """A middleware that, like a traced vLLM server, records a span for each
    request that carries a W3C ``traceparent``, as a child of that context."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    provider = TracerProvider(resource=Resource.create({"service.name": "fake-upstream"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("fake-upstream")
    propagator = TraceContextTextMapPropagator()

    @web.middleware
    async def span(request: web.Request, handler: Any) -> web.StreamResponse:
        if "traceparent" not in request.headers:
            return await handler(request)
        parent = propagator.extract(dict(request.headers))
        with tracer.start_as_current_span(
            f"fake {request.path}", context=parent, kind=SpanKind.SERVER
        ):
            return await handler(request)

    return span


def make_app(
    name: str,
    usage: bool = True,
    seed: int = 0,
    api_key: str | None = None,
    otlp_endpoint: str | None = None,
) -> web.Application:
    middlewares = [require_key(api_key)] if api_key else []
    if otlp_endpoint:
        middlewares.append(traced(otlp_endpoint))
    app = web.Application(middlewares=middlewares)
    app[STATE] = {
        "name": name,
        "usage": usage,
        "requests": [],
        "events": [],
        "faults": [],
        "fail_ratio": 0.0,
        "rng": random.Random(seed),
        "load": {},
    }
    app.router.add_post("/v1/chat/completions", generate)
    app.router.add_post("/v1/completions", generate)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/_requests", control)
    app.router.add_get("/_events", control)
    app.router.add_post("/_reset", control)
    app.router.add_post("/_faults", control)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/_load", set_load)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="fake")
    parser.add_argument("--no-usage", action="store_true")
    parser.add_argument("--api-key", default=None, help="answer 401 to /v1/ calls without it")
    parser.add_argument("--otlp-endpoint", default=None, help="record spans of traced requests")
    args = parser.parse_args()
    web.run_app(
        make_app(
            args.name,
            usage=not args.no_usage,
            api_key=args.api_key,
            otlp_endpoint=args.otlp_endpoint,
        ),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
