"""``TelemetryExtension``: per GraphQL operation, the operation's name (or the hash of its
document's shape) and type for the request's metrics and span, its error codes, and the
policy's masked and denied fields by data class, counted from the request's
:class:`FieldGuard`."""

from __future__ import annotations

from collections import Counter
from functools import cache

from opentelemetry import trace
from strawberry.extensions import SchemaExtension

from gateway.telemetry import metrics
from gateway.telemetry.middleware import NOTE, code_label
from gateway.telemetry.names import operation_label
from gateway.telemetry.shape import shape_hash
from security.catalogue import Catalogue, default_catalogue


@cache
def _catalogue() -> Catalogue:
    return default_catalogue()


def data_class(path: str) -> str:
    type_name, _, field_name = path.partition(".")
    entry = _catalogue().field(type_name, field_name)
    return entry.data_class if entry is not None else "unclassified"


class TelemetryExtension(SchemaExtension):
    shape: str | None = None

    def on_execute(self):
        # Execution starts only for a document that parsed and validated: its names are
        # the schema's, so its shape may be hashed (this request's parse, not a second one).
        document = self.execution_context.graphql_document
        if document is not None:
            self.shape = shape_hash(document)
        yield

    def on_operation(self):
        yield
        note = NOTE.get()
        ctx = self.execution_context
        present = bool(ctx.query) or ctx.graphql_document is not None
        label = operation_label(ctx.operation_name, self.shape, document=present)
        try:
            kind = ctx.operation_type.value
        except Exception:  # no operation could be found in the document
            kind = None
        # The result holds the parse and validation errors too, once it exists.
        found = ctx.result.errors if ctx.result is not None else ctx.pre_execution_errors
        errors = list(found or ())
        for error in errors:
            metrics.REFUSALS.labels(code_label((error.extensions or {}).get("code"))).inc()
        decisions = _decisions(ctx.context)
        span = trace.get_current_span()
        if span.is_recording():
            for (cls, decision), count in decisions.items():
                span.set_attribute(f"medfed.policy.{decision}.{cls}", count)
            span.set_attribute("medfed.errors", len(errors))
        for (cls, decision), count in decisions.items():
            metrics.FIELDS.labels(cls, decision).inc(count)
        if note is not None:
            note.operation, note.operation_type = label, kind
            note.document_hash = self.shape
            note.errors_counted = True


def _decisions(context: object) -> Counter[tuple[str, str]]:
    """Masked and denied values' fields, once per (person, field), by data class."""
    counted: Counter[tuple[str, str]] = Counter()
    guard = getattr(context, "guard", None)
    for record in getattr(guard, "accesses", {}).values():
        for path in record.masked:
            counted[data_class(path), "masked"] += 1
        for path in record.denied:
            counted[data_class(path), "denied"] += 1
    return counted
