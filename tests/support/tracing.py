"""The OpenTelemetry SDK with an in-memory exporter, installed once per test process the way
the gateway installs its own (the redacting processor first): tests read the finished
spans instead of a collector. Spans are kept only inside ``with memory_spans()``, so the
provider left installed for later tests does not pile up their spans."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class Kept(InMemorySpanExporter):
    keeping = False

    def export(self, spans) -> SpanExportResult:
        return super().export(spans) if self.keeping else SpanExportResult.SUCCESS


_exporter: list[Kept] = []


@contextlib.contextmanager
def memory_spans() -> Iterator[Kept]:
    """The spans finished inside the block."""
    from gateway.telemetry.tracing import use_provider

    if not _exporter:
        exporter = Kept()
        use_provider(TracerProvider(), SimpleSpanProcessor(exporter))
        _exporter.append(exporter)
    exporter = _exporter[0]
    exporter.clear()
    exporter.keeping = True
    try:
        yield exporter
    finally:
        exporter.keeping = False


def trust(fed, callers: list[str]) -> None:
    """``[telemetry] trusted_trace_callers`` for the apps ``fed`` builds from now on (the
    test client connects from 127.0.0.1)."""
    fed.settings = fed.settings.with_tables(telemetry={"trusted_trace_callers": list(callers)})
