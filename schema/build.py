"""Assemble the Strawberry schema with its extensions."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import strawberry
from graphql import GraphQLError, GraphQLObjectType
from strawberry.extensions import (
    DisableIntrospection,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.input_errors import tag_input_errors
from schema.limits import LIMIT_CODES, OperationLimits, limit_extensions
from schema.queries import Query
from schema.scalars import SCALAR_OVERRIDES
from security.catalogue import Catalogue, default_catalogue

log = logging.getLogger("medfed.graphql")

# Codes of errors we raise on purpose; anything else is unexpected and logged in full.
EXPECTED_CODES = (
    frozenset(
        {
            "FORBIDDEN_FIELD",
            "FORBIDDEN",
            "BAD_USER_INPUT",
            "NOT_FOUND",
            "SOURCE_UNAVAILABLE",
            "IDEMPOTENCY_KEY_REUSED",
            "DATA_INTEGRITY",
            "PRIVACY_BUDGET_EXHAUSTED",
        }
    )
    | LIMIT_CODES
)


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


class BreakGlassNotice(SchemaExtension):
    """Say so in the response whenever break-glass was used or refused: the caller must know
    the access is flagged and counted (the audit log reads the same flags from the guard)."""

    def get_results(self) -> dict:
        ctx = self.execution_context.context
        guard = getattr(ctx, "guard", None)
        relations = getattr(ctx, "_relations", None)
        refused = sorted(relations.break_glass_refused) if relations is not None else []
        if guard is None or not (guard.break_glass or refused):
            return {}
        return {
            "breakGlass": {
                "warning": "Emergency access (break-glass): this access is flagged for audit and "
                "counted against your daily limit.",
                "persons": sorted(guard.break_glass_persons),
                "refused": refused,
                "limitPerDay": relations.break_glass_limit if relations is not None else None,
            }
        }


def describe_from_catalogue(schema: strawberry.Schema, catalogue: Catalogue) -> None:
    """Append each catalogued field's class and level to its description, so the SDL and
    introspection show what the policy decides from; the catalogue stays the only source."""
    type_map = schema._schema.type_map
    for type_name, entry in catalogue.types.items():
        gql_type = type_map.get(type_name)
        if not isinstance(gql_type, GraphQLObjectType):
            continue
        for name, gql_field in gql_type.fields.items():
            if name in entry.fields:
                note = entry.fields[name].describe()
            elif name in entry.links:
                note = "Link: the rows it leads to are authorized one by one."
            else:
                continue
            base = (gql_field.description or "").rstrip()
            if not base.endswith(note):
                gql_field.description = f"{base} {note}".strip()


class MedfedSchema(strawberry.federation.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Errors about the client's values become BAD_USER_INPUT at their path first: they
        # are answers like any validation error, never a logged incident.
        tag_input_errors(errors, execution_context.graphql_document if execution_context else None)
        # Expected errors are answers, not incidents: logging a traceback for each would cost
        # more than the policy itself on long lists, and could write values into logs.
        for error in errors:
            code = (error.extensions or {}).get("code")
            if code in EXPECTED_CODES or error.original_error is None:
                continue
            log.error(
                "unexpected error at %s: %r",
                error.path,
                error.original_error,
                exc_info=error.original_error,
            )


def build_schema(
    *,
    dev: bool,
    mutation: type | None = None,
    query: type = Query,
    types: Sequence[type] = (),
    limits: OperationLimits | None = None,
) -> strawberry.Schema:
    extensions: list = [
        PartialResults,
        BreakGlassNotice,
        # Parses with the length and token limits, and caches (in place of ParserCache).
        *limit_extensions(limits or OperationLimits()),
        lambda: ValidationCache(maxsize=512),
    ]
    if not dev:
        extensions.append(DisableIntrospection)
    schema = MedfedSchema(
        query=query,
        types=types,
        mutation=mutation,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=not dev),
        # Date, DateTime and Decimal refuse what later arithmetic could not hold.
        scalar_overrides=SCALAR_OVERRIDES,
        # Every schema is also a Federation 2 subgraph; 2.7 is the newest link version the
        # committed composer (@theguild/federation-composition 0.27) accepts.
        federation_version="2.7",
    )
    describe_from_catalogue(schema, default_catalogue())
    return schema
