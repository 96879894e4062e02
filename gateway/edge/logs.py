"""Structured JSON logs carrying the request id and the trace id.

Every line has ``time``, ``level``, ``logger``, ``message``, ``request_id`` and ``trace_id``
(null outside a request or with tracing off), so lines parse the same in every process.
Only what the gateway itself decides goes in a line: method, path, status, timing, role and
organisation. Never query text, variables, headers or client addresses: any of them can hold
a name, an ID number or a diagnosis.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

from opentelemetry import trace

from gateway.telemetry.redact import scrub

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "medfed_request_id", default=None
)
# The id the client offered in its own X-Request-Id, logged beside ours (never instead).
CLIENT_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "medfed_client_request_id", default=None
)
access_log = logging.getLogger("medfed.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        span = trace.get_current_span().get_span_context()
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            # Scrubbed like span attributes: a library's message may quote a value.
            "message": scrub(record.getMessage()),
            "request_id": REQUEST_ID.get(),
            "trace_id": format(span.trace_id, "032x") if span.is_valid else None,
            "pid": record.process,
        }
        if span.is_valid:
            line["span_id"] = format(span.span_id, "016x")
        client_request_id = CLIENT_REQUEST_ID.get()
        if client_request_id:
            line["client_request_id"] = client_request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({key: scrub(value) for key, value in fields.items()})
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages and tracebacks may quote row values.
            line["exception"] = record.exc_info[0].__name__
        return json.dumps(line, ensure_ascii=False, default=str)
