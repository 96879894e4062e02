"""Assemble the Strawberry schema with its extensions."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.queries import Query

log = logging.getLogger("medfed.graphql")

# Codes of errors we raise on purpose; anything else is unexpected and logged in full.
EXPECTED_CODES = frozenset({
    "FORBIDDEN_FIELD", "FORBIDDEN", "BAD_USER_INPUT", "NOT_FOUND", "SOURCE_UNAVAILABLE",
    "IDEMPOTENCY_KEY_REUSED", "DATA_INTEGRITY",
})


class PartialResults(SchemaExtension):
    """Append a SOURCE_UNAVAILABLE error for every source that failed or missed the deadline,
    beside whatever data the other sources gave."""

    def on_execute(self):
        yield
        ctx = self.execution_context.context
        result = self.execution_context.result
        if result is None or not getattr(ctx, "failures", None):
            return
        result.errors = [*(result.errors or []), *ctx.failure_errors()]


class MedfedSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        # Expected errors are answers, not incidents: logging a traceback for each would cost
        # more than the policy itself on long lists, and could write values into logs.
        for error in errors:
            code = (error.extensions or {}).get("code")
            if code in EXPECTED_CODES or error.original_error is None:
                continue
            log.error("unexpected error at %s: %r", error.path, error.original_error,
                      exc_info=error.original_error)


def build_schema(*, dev: bool, mutation: type | None = None) -> strawberry.Schema:
    extensions: list = [
        PartialResults,
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
    ]
    if not dev:
        extensions.append(DisableIntrospection)
    return MedfedSchema(
        query=Query,
        mutation=mutation,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=not dev),
    )
