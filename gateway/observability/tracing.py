"""Optional OpenTelemetry tracing: one span per request (the request id as an
attribute) and a child span per upstream call, i.e. per attempt, exported
over OTLP/HTTP. Imported only when ``tracing:`` is configured and the
``opentelemetry`` packages are installed (the ``otel`` extra).

Trace context crosses the gateway both ways (W3C Trace Context): a request's
``traceparent``/``tracestate`` make its span a child of the caller's, and each
upstream call carries its own span as ``traceparent`` (through the
transport's ``REQUEST_HEADERS``), so a vLLM server started with
``--otlp-traces-endpoint`` joins the same trace. Spans carry OpenTelemetry's
GenAI attributes (``gen_ai.system``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.usage.input_tokens``/``output_tokens``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import aclosing
from typing import Any

from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from adapters.config import Timeouts
from adapters.errors import GatewayError
from adapters.transport.base import REQUEST_HEADERS
from gateway.config.observability import TracingConfig
from gateway.observability.logs import AccessRecord
from gateway.routing.target import Target

Body = dict[str, Any]
Batch = list[Body]
RequestSpan = tuple[Span, object]  # the span and the context token to detach
_PROPAGATOR = TraceContextTextMapPropagator()
# OpenAI operations as OpenTelemetry's GenAI conventions name them.
_OPERATIONS = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}


class Tracing:
    def __init__(self, config: TracingConfig) -> None:
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": config.service_name}),
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
        )
        exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint)
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self._provider.get_tracer("vllm-gateway")

    def start(self, record: AccessRecord, headers: Mapping[str, str]) -> RequestSpan:
        """The request's span: a child of the caller's when it sent a trace context."""
        parent = _PROPAGATOR.extract(headers) if "traceparent" in headers else None
        span = self.tracer.start_span(
            f"{record.method} {record.path}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "gateway.request_id": record.request_id,
                "http.request.method": record.method,
                "url.path": record.path,
            },
        )
        # Current for the rest of the request, so upstream spans become its children.
        return span, context.attach(trace.set_span_in_context(span))

    def finish(self, record: AccessRecord, started: RequestSpan) -> None:
        span, token = started
        context.detach(token)  # type: ignore[arg-type]
        attributes = {
            "http.response.status_code": record.status,
            "gateway.model": record.model,
            "gateway.target": record.target,
            "gateway.key_name": record.key_name,
            "gateway.error_type": record.error_type,
            "gen_ai.request.model": record.model,
            "gen_ai.usage.input_tokens": record.prompt_tokens,
            "gen_ai.usage.output_tokens": record.completion_tokens,
        }
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        if record.status >= 500 or record.status == 499:
            span.set_status(Status(StatusCode.ERROR, record.error_type or str(record.status)))
        span.end()

    def wrap_adapters(self, targets: Iterable[Target]) -> None:
        """Trace every upstream call: one proxy per adapter, shared by its targets."""
        targets = list(targets)
        names: dict[int, dict[str, str]] = {}
        for target in targets:
            names.setdefault(id(target.adapter), {})[target.upstream_model] = target.name
        proxies: dict[int, TracedAdapter] = {}
        for target in targets:
            key = id(target.adapter)
            if key not in proxies:
                proxies[key] = TracedAdapter(target.adapter, self.tracer, names[key])
            target.adapter = proxies[key]

    def shutdown(self) -> None:
        """Export what is left (blocking: call it off the event loop)."""
        self._provider.shutdown()


class TracedAdapter:
    """An adapter whose calls each run in a client span, whose context goes
    upstream as ``traceparent``; the rest passes through."""

    def __init__(self, inner: Any, tracer: trace.Tracer, target_names: dict[str, str]) -> None:
        self._inner = inner
        self._tracer = tracer
        self._target_names = target_names
        self._system = str(getattr(inner, "system", "openai"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _attributes(self, operation: str, body: Body) -> dict[str, Any]:
        upstream = str(body.get("model"))
        return {
            "gateway.operation": operation,
            "gateway.target": self._target_names.get(upstream, ""),
            "gateway.upstream_model": upstream,
            "gateway.stream": operation.endswith("_stream"),
            "gen_ai.system": self._system,
            "gen_ai.operation.name": _OPERATIONS[operation.removesuffix("_stream")],
            "gen_ai.request.model": upstream,
        }

    async def _call(
        self,
        operation: str,
        method: Callable[[Body, Timeouts, float | None], Awaitable[Body]],
        body: Body,
        timeouts: Timeouts,
        deadline: float | None,
    ) -> Body:
        with self._tracer.start_as_current_span(
            f"upstream {operation}",
            kind=SpanKind.CLIENT,
            attributes=self._attributes(operation, body),
        ) as span:
            token = REQUEST_HEADERS.set(_trace_headers(span))
            try:
                result = await method(body, timeouts, deadline)
            except GatewayError as exc:
                span.set_attributes({"error.type": exc.type, "gateway.status": exc.status})
                raise
            finally:
                REQUEST_HEADERS.reset(token)
            _answered(span, result)
            return result

    async def _stream(
        self,
        operation: str,
        method: Callable[[Body, Timeouts, float | None], AsyncIterator[Batch]],
        body: Body,
        timeouts: Timeouts,
        deadline: float | None,
    ) -> AsyncIterator[Batch]:
        # Started on the first chunk asked for: inside the request's context.
        span = self._tracer.start_span(
            f"upstream {operation}",
            kind=SpanKind.CLIENT,
            attributes=self._attributes(operation, body),
        )
        chunks = 0
        try:
            async with aclosing(method(body, timeouts, deadline)) as stream:  # type: ignore[type-var]
                # The request leaves with the first ``anext``: under this span's context.
                token = REQUEST_HEADERS.set(_trace_headers(span))
                try:
                    first = await anext(stream, None)
                finally:
                    REQUEST_HEADERS.reset(token)
                if first is None:
                    return
                if first:
                    _answered(span, first[0])
                chunks += len(first)
                yield first
                async for batch in stream:
                    chunks += len(batch)
                    yield batch
        except GatewayError as exc:
            span.set_attributes({"error.type": exc.type, "gateway.status": exc.status})
            span.set_status(Status(StatusCode.ERROR, exc.message))
            raise
        finally:
            span.set_attribute("gateway.chunks", chunks)
            span.end()

    async def chat(self, body: Body, timeouts: Timeouts, deadline: float | None = None) -> Body:
        return await self._call("chat", self._inner.chat, body, timeouts, deadline)

    async def completions(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> Body:
        return await self._call("completions", self._inner.completions, body, timeouts, deadline)

    async def embeddings(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> Body:
        return await self._call("embeddings", self._inner.embeddings, body, timeouts, deadline)

    def chat_stream(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> AsyncIterator[Batch]:
        return self._stream("chat_stream", self._inner.chat_stream, body, timeouts, deadline)

    def completions_stream(
        self, body: Body, timeouts: Timeouts, deadline: float | None = None
    ) -> AsyncIterator[Batch]:
        return self._stream(
            "completions_stream", self._inner.completions_stream, body, timeouts, deadline
        )


def _trace_headers(span: Span) -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) naming ``span`` as the parent."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def _answered(span: Span, result: Body) -> None:
    """What the upstream said it is (its model name) and used (usage)."""
    if isinstance(result.get("model"), str):
        span.set_attribute("gen_ai.response.model", result["model"])
    usage = result.get("usage")
    if isinstance(usage, dict):
        for key, name in (
            ("prompt_tokens", "input_tokens"),
            ("completion_tokens", "output_tokens"),
        ):
            if isinstance(usage.get(key), int):
                span.set_attribute(f"gen_ai.usage.{name}", usage[key])
