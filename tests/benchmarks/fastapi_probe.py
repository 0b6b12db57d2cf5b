"""A naive pass-through, for comparison only: FastAPI on uvicorn, each request
forwarded to the upstream with one shared ``httpx.AsyncClient`` and its answer
returned as it came (streams relayed chunk by chunk). It is what a gateway
written the obvious way costs per request; the benchmark measures it with
``--compare fastapi`` (``python -m tests.benchmarks.fastapi_probe --port P
--upstream URL --model M --upstream-model U``)."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse


def make_app(upstream: str, model: str, upstream_model: str) -> FastAPI:
    clients: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        clients["upstream"] = httpx.AsyncClient(base_url=upstream, limits=limits, timeout=60)
        yield
        await clients["upstream"].aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        body["model"] = upstream_model
        client = clients["upstream"]
        if body.get("stream"):
            upstream_request = client.build_request("POST", "/chat/completions", json=body)
            answer = await client.send(upstream_request, stream=True)

            async def relay() -> AsyncIterator[bytes]:
                try:
                    async for piece in answer.aiter_raw():
                        yield piece
                finally:
                    await answer.aclose()

            return StreamingResponse(relay(), media_type="text/event-stream")
        answer = await client.post("/chat/completions", json=body)
        result = answer.json()
        result["model"] = model
        return Response(orjson.dumps(result), answer.status_code, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--upstream-model", required=True)
    args = parser.parse_args()
    app = make_app(args.upstream, args.model, args.upstream_model)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
