"""A small OTLP/HTTP trace receiver for tests: it decodes the protobuf export
requests a real collector would get and lists the spans at ``GET /_spans``.

Run it as a process: ``python -m tests.fakes.otlp_collector --port P``.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
from aiohttp import web
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SPANS = web.AppKey("spans", list)


def _value(attribute: dict[str, Any]) -> Any:
    value = attribute.get("value", {})
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in value:
            return value[kind]
    if "intValue" in value:
        return int(value["intValue"])
    return value


def _span(span: Any, service: str) -> dict[str, Any]:
    as_dict = MessageToDict(span)
    return {
        "service": service,
        "name": span.name,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "kind": span.kind,
        "status": span.status.code,
        "attributes": {a["key"]: _value(a) for a in as_dict.get("attributes", [])},
    }


async def export(request: web.Request) -> web.Response:
    message = ExportTraceServiceRequest()
    message.ParseFromString(await request.read())
    for resource_spans in message.resource_spans:
        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                request.app[SPANS].append(_span(span, resource.get("service.name", "")))
    return web.Response(
        body=ExportTraceServiceResponse().SerializeToString(),
        content_type="application/x-protobuf",
    )


async def spans(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(request.app[SPANS]), content_type="application/json")


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app() -> web.Application:
    app = web.Application()
    app[SPANS] = []
    app.router.add_post("/v1/traces", export)
    app.router.add_get("/_spans", spans)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(make_app(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
