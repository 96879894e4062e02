"""Operation limits checked before anything executes: query length and token count while
parsing, depth, aliases, directives per field and total cost while validating.

Every refusal is a GraphQL error with an ``extensions.code``, so clients can tell which limit
they hit. Validation rules are built once per schema: ``ValidationCache`` keys on the rule
classes, so a new class per request would defeat the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    parse,
)
from graphql.type import GraphQLObjectType, GraphQLSchema
from pydantic import PositiveInt
from strawberry.extensions import SchemaExtension

from schema.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from security.tables import Table

# Lists without a `first` argument (a visit's prescriptions, a prescription's items) are
# bounded per parent by the domain, not by paging; a handful is the realistic size.
UNPAGED_LIST_SIZE = 5
_INTROSPECTION = frozenset({"__schema", "__type"})


class OperationLimits(Table):
    """The query part of ``[limits]``; the HTTP part is the gateway's (gateway.config.tables)."""

    max_query_length: PositiveInt = 20_000
    max_tokens: PositiveInt = 3_000
    max_depth: PositiveInt = 12
    max_aliases: PositiveInt = 30
    max_directives_per_field: PositiveInt = 4
    max_cost: PositiveInt = 25_000


def limit_error(code: str, message: str, **details: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **details})


LIMIT_CODES = frozenset(
    {
        "QUERY_TOO_LONG",
        "TOO_MANY_TOKENS",
        "QUERY_TOO_DEEP",
        "TOO_MANY_ALIASES",
        "TOO_MANY_DIRECTIVES",
        "QUERY_TOO_COSTLY",
        "PERSISTED_QUERY_NOT_FOUND",
        "PERSISTED_QUERY_NOT_TRUSTED",
        "PERSISTED_QUERY_HASH_MISMATCH",
    }
)


# -- parsing ---------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _parse(text: str, max_tokens: int) -> DocumentNode:
    return parse(text, max_tokens=max_tokens)


class ParseLimits(SchemaExtension):
    """Parse with the length and token limits (replaces Strawberry's ``ParserCache``).

    A trusted document resolved earlier in the request arrives already parsed in
    ``execution_context.graphql_document``: it is never parsed again.
    """

    def __init__(self, limits: OperationLimits) -> None:
        super().__init__()
        self.limits = limits

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is None and ctx.query is not None:
            if len(ctx.query) > self.limits.max_query_length:
                raise limit_error(
                    "QUERY_TOO_LONG",
                    f"the query is {len(ctx.query)} characters long; the limit "
                    f"is {self.limits.max_query_length}",
                    limit=self.limits.max_query_length,
                )
            try:
                ctx.graphql_document = _parse(ctx.query, self.limits.max_tokens)
            except GraphQLError as exc:
                if "tokens" in exc.message and "Parsing aborted" in exc.message:
                    raise limit_error(
                        "TOO_MANY_TOKENS",
                        f"the query has more than {self.limits.max_tokens} tokens",
                        limit=self.limits.max_tokens,
                    ) from None
                raise
        yield


# -- validation ------------------------------------------------------------------------------


def _unwrap(gql_type: Any) -> Any:
    while isinstance(gql_type, GraphQLNonNull):
        gql_type = gql_type.of_type
    return gql_type


def _named(gql_type: Any) -> Any:
    gql_type = _unwrap(gql_type)
    while isinstance(gql_type, GraphQLList | GraphQLNonNull):
        gql_type = gql_type.of_type
    return gql_type


@dataclass
class _Measure:
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    worst_directives: int = 0


class _Walker:
    """One walk over an operation, fragments expanded (each spread at most once per path, so
    circular fragments end; the standard rule ``NoFragmentCycles`` reports those)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        defaults: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.defaults = defaults
        self.measure = _Measure()

    def walk(
        self,
        selection_set: SelectionSetNode | None,
        parent: Any,
        depth: int,
        multiplier: int,
        seen: frozenset[str],
    ) -> None:
        if selection_set is None:
            return
        for node in selection_set.selections:
            self.measure.worst_directives = max(
                self.measure.worst_directives, len(node.directives or ())
            )
            if isinstance(node, FieldNode):
                self._field(node, parent, depth, multiplier, seen)
            elif isinstance(node, InlineFragmentNode):
                target = (
                    self.schema.type_map.get(node.type_condition.name.value)
                    if node.type_condition
                    else parent
                )
                self.walk(node.selection_set, target, depth, multiplier, seen)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                target = self.schema.type_map.get(fragment.type_condition.name.value)
                self.walk(fragment.selection_set, target, depth, multiplier, seen | {name})

    def _field(
        self, node: FieldNode, parent: Any, depth: int, multiplier: int, seen: frozenset[str]
    ) -> None:
        name = node.name.value
        if name in _INTROSPECTION:
            # Introspection is off outside dev mode; its own nesting would trip the depth limit
            return
        if node.alias is not None:
            self.measure.aliases += 1
        self.measure.cost += multiplier
        self.measure.depth = max(self.measure.depth, depth)
        definition = parent.fields.get(name) if isinstance(parent, GraphQLObjectType) else None
        if definition is None or node.selection_set is None:
            return
        self.walk(
            node.selection_set,
            _named(definition.type),
            depth + 1,
            multiplier * self._list_size(node, definition, parent),
            seen,
        )

    def _list_size(self, node: FieldNode, definition: Any, parent: Any) -> int:
        if "first" in definition.args:
            for argument in node.arguments or ():
                if argument.name.value != "first":
                    continue
                value = argument.value
                if isinstance(value, IntValueNode):
                    return max(1, min(int(value.value), MAX_PAGE_SIZE))
                if isinstance(value, VariableNode):
                    # Unknown until execution: assume its default, else the most it may be.
                    default = self.defaults.get(value.name.value)
                    return default if isinstance(default, int) else MAX_PAGE_SIZE
                return MAX_PAGE_SIZE
            return DEFAULT_PAGE_SIZE
        if isinstance(_unwrap(definition.type), GraphQLList):
            # A connection's edges/nodes are the page already counted at the connection.
            if parent.name.endswith("Connection"):
                return 1
            return UNPAGED_LIST_SIZE
        return 1


def measure_operation(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> _Measure:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    defaults: dict[str, Any] = {}
    for variable in operation.variable_definitions or ():
        if isinstance(variable.default_value, IntValueNode):
            defaults[variable.variable.name.value] = int(variable.default_value.value)
    root = schema.get_root_type(operation.operation)
    walker = _Walker(schema, fragments, defaults)
    walker.walk(operation.selection_set, root, 1, 1, frozenset())
    return walker.measure


def limit_rule(limits: OperationLimits) -> type[ValidationRule]:
    class OperationLimitsRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            ctx: ValidationContext = self.context
            found = measure_operation(ctx.schema, ctx.document, node)
            checks: list[tuple[int, int, str, str]] = [
                (found.depth, limits.max_depth, "QUERY_TOO_DEEP", "nesting depth"),
                (found.aliases, limits.max_aliases, "TOO_MANY_ALIASES", "aliases"),
                (
                    found.worst_directives,
                    limits.max_directives_per_field,
                    "TOO_MANY_DIRECTIVES",
                    "directives on one field",
                ),
                (
                    found.cost,
                    limits.max_cost,
                    "QUERY_TOO_COSTLY",
                    "estimated cost (fields x list sizes)",
                ),
            ]
            for value, limit, code, what in checks:
                if value > limit:
                    self.report_error(
                        limit_error(
                            code,
                            f"{what} {value} exceeds the limit of {limit}",
                            limit=limit,
                            found=value,
                        )
                    )

    return OperationLimitsRule


def limit_extensions(limits: OperationLimits) -> list[Callable[[], SchemaExtension]]:
    """The schema extensions enforcing ``limits``; the rule class is shared by every request."""
    from strawberry.extensions import AddValidationRules

    rule = limit_rule(limits)
    return [lambda: ParseLimits(limits), lambda: AddValidationRules([rule])]
