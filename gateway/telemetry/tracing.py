"""OpenTelemetry traces: off by default (the API's no-op tracer costs next to nothing), a
console exporter for development, OTLP over HTTP to a collector in production, always
through a batching processor and the attribute filter of :mod:`gateway.telemetry.redact`.

Spans: the request (``TelemetryMiddleware``, a server span continuing a caller's
``traceparent``), the GraphQL operation with parsing, validation and execution (Strawberry's
OpenTelemetry extension, without its document-text attribute and per-resolver spans), one
span per source fetch, the audit append, and the HTTP calls to peers and subgraphs
(opentelemetry-instrumentation-httpx, which also sends ``traceparent``), and the SQL
statements (opentelemetry-instrumentation-sqlalchemy, statement text without parameters).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Generator
from typing import Any

from opentelemetry import trace
from strawberry.extensions import SchemaExtension
from strawberry.extensions.tracing import OpenTelemetryExtension
from strawberry.extensions.tracing.opentelemetry import LifecycleStep

from gateway.config.tables import TelemetrySettings

log = logging.getLogger("medfed.telemetry")
_configured: list[str] = []


class GraphQLSpans(OpenTelemetryExtension):
    """Parsing, validation and execution spans under the request's server span, which
    :class:`TelemetryMiddleware` names after the OpenTelemetry GraphQL conventions
    (``{type} {name}``, ``graphql.operation.name``/``.type`` and the hash of the document's
    shape, never its text). No operation span of its own (the server span is that span, one fewer
    per request) and no span per resolver: a thousand-row list would be a thousand spans,
    and their arguments are values."""

    resolve = SchemaExtension.resolve  # not overridden: Strawberry adds no resolver wrapper

    def __init__(self, *, execution_context: Any = None) -> None:
        # Strawberry's asks the provider for a new tracer in every operation's extension
        # (a tenth of a millisecond per request); one for the process does.
        self._arg_filter = None
        self._tracer = _graphql_tracer()
        self._span_holder = {}
        if execution_context:
            self.execution_context = execution_context

    def on_operation(self) -> Generator[None, None, None]:
        span = trace.get_current_span()
        self._span_holder[LifecycleStep.OPERATION] = span
        yield

    def on_execute(self) -> Generator[None, None, None]:
        with self._tracer.start_as_current_span("GraphQL Execution"):
            yield


@functools.cache
def _graphql_tracer() -> Any:
    return trace.get_tracer("strawberry")


def schema_extensions() -> tuple[type, ...]:
    """The GraphQL span extension once an SDK tracer provider is set (tests set their own),
    nothing while tracing is off."""
    return (GraphQLSpans,) if tracing_on() else ()


def tracing_on() -> bool:
    from opentelemetry.sdk.trace import TracerProvider

    return isinstance(trace.get_tracer_provider(), TracerProvider)


def instrument_libraries() -> None:
    """httpx: a client span and ``traceparent`` on every call to a peer or a subgraph."""
    if "libraries" in _configured:
        return
    _configured.append("libraries")
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()


def trace_engines(engines: list[Any]) -> None:
    """A span per SQL statement on these engines (the statement's text, never its bound
    parameters). The instrumentor's own entry point refuses SQLAlchemy 2.1 (outside its
    declared range) and patches ``create_engine``, which our engines are made before; its
    per-engine tracer works on 2.1's events, so each engine is handed to it directly."""
    if not tracing_on():
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    usage = get_meter("medfed.sql").create_up_down_counter("db.client.connections.usage")
    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    for engine in engines:
        sync = getattr(engine, "sync_engine", engine)
        if not getattr(sync, "_medfed_traced", False):
            EngineTracer(tracer, sync, usage)
            sync._medfed_traced = True


def use_provider(provider: Any, exporting: Any) -> None:
    """Makes ``provider`` the process's tracer provider, its spans scrubbed by
    :class:`RedactingProcessor` before ``exporting`` (a batching processor in production,
    the tests' in-memory one) sees them; and instruments httpx and SQLAlchemy."""
    from gateway.telemetry.redact import RedactingProcessor

    provider.add_span_processor(RedactingProcessor())
    provider.add_span_processor(exporting)
    trace.set_tracer_provider(provider)
    instrument_libraries()


def flush_tracing(timeout_millis: int = 5_000) -> None:
    """Exports the spans still queued in the batching processor. Called when the app stops:
    the SDK's own flush at interpreter exit does not reach the exporter of a served process
    stopped by SIGTERM, and the last requests' spans were lost."""
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush(timeout_millis)


def configure_tracing(settings: TelemetrySettings) -> None:
    """Once per process (each worker builds its app, and so calls this, itself)."""
    if settings.traces == "off" or "provider" in _configured:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    if settings.traces == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        # Every trace: the ratio sampler's arithmetic on each trace id is for nothing.
        sampler=ParentBased(
            ALWAYS_ON if settings.sample_ratio >= 1 else TraceIdRatioBased(settings.sample_ratio)
        ),
    )
    use_provider(provider, BatchSpanProcessor(exporter))
    _configured.append("provider")
