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
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, Info

from schema.client_errors import SafeValueRules, sanitize
from schema.limits import OperationLimits, limit_extensions
from schema.queries import Query
from schema.representations import EntityKeys, problem, refusal
from schema.scalars import SCALAR_OVERRIDES
from schema.sdl_access import gate_service_sdl
from security.catalogue import Catalogue, default_catalogue

log = logging.getLogger("medfed.graphql")


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
                # BREAK_GLASS_CLINICIAN_LIMIT, BREAK_GLASS_INSTITUTION_LIMIT, ... (docs/policy.md)
                "refusedBecause": relations.break_glass_refused_because if refused else None,
                "opened": sorted(relations.break_glass_opened) if relations is not None else [],
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
    dev: bool = False
    _entity_keys: EntityKeys | None = None

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Every error is first rewritten so that it carries a code and none of the submitted
        # values; only errors that came without a code (not the client's doing) are logged,
        # and as their type and path only: a message or traceback may quote row values.
        # Expected errors are answers, not incidents: logging each would also cost more than
        # the policy itself on long lists.
        ctx = getattr(execution_context, "context", None)
        unexpected = sanitize(
            errors,
            schema=self._schema,
            variables=getattr(execution_context, "variables", None),
            dev=self.dev,
            # Variables are coerced when execution begins; before it, errors are the parser's
            # or the validator's.
            executed=getattr(execution_context, "result", None) is not None,
            request_id=getattr(ctx, "request_id", None),
        )
        for error in unexpected:
            original = error.original_error
            log.error(
                "unexpected error at %s: %s",
                error.path,
                type(original).__name__ if original is not None else "GraphQLError",
                exc_info=original if isinstance(original, BaseException) else None,
            )

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        # Checked before Strawberry's resolver, which trusts every representation's shape.
        if self._entity_keys is None:
            self._entity_keys = EntityKeys.of(self.schema_converter.type_map)
        results: list = []
        for index, representation in enumerate(representations):
            reason = problem(representation, self._entity_keys, dev=self.dev)
            if reason is not None:
                results.append(refusal(index, reason))
            else:
                # A copy: Strawberry pops __typename off the dict it is given.
                results += super().entities_resolver(info, [dict(representation)])
        return results


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
        # Literal values are checked by a rule that does not print them.
        SafeValueRules,
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
    schema.dev = dev
    if not dev:
        gate_service_sdl(schema._schema)
    describe_from_catalogue(schema, default_catalogue())
    return schema
