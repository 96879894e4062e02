"""Which values of an executed result are sealed, found from the operation and the schema.

Sealed with ``X-Seal-To`` (decided from the catalogue, :func:`sealed_entry`): every level-4+
value (names, ID numbers, phones, addresses, diagnoses, findings); every identity and contact
field above level 2 (birth date and gender too: in clear beside a sealed ID number they
narrow it to a few hundred people; the level-2 pseudonym ``personId`` stays clear, as the
key partners join on); and every field the catalogue marks ``quasi`` (the person's insured
region wherever it appears).

The walk runs over ``ExecutionResult.data`` after execution, where every value is already
the exact scalar GraphQL serialised, and before the response (or the audit event) is built.
Response keys (aliases), fragments and abstract types are resolved from the operation
itself, so the path given to ``seal`` is the path the client sees.

Conservative on purpose: where the runtime type of an abstract value is unknown (no
``__typename`` selected), a field is sealed when it is sealed in any possible type; a
sealed field is sealed whole (lists and objects under it included); a type reached only
through a gate field counts at least at the gate's level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
)
from graphql.utilities import get_operation_ast

from security.catalogue import Catalogue, FieldEntry
from security.errors import MedfedError

SEAL_LEVEL = 4
IDENTITY_CLASSES = frozenset({"identity", "contact"})
PSEUDONYM_LEVEL = 2  # identity fields at this level are pseudonyms (personId): kept clear
Seal = Callable[[list[str | int], Any], str]


def sealed_entry(entry: FieldEntry | None, gate_level: int = 0) -> bool:
    """Whether a value of this catalogue entry (reached under a gate of ``gate_level``) is
    sealed for a partner."""
    if gate_level >= SEAL_LEVEL:
        return True
    if entry is None:
        return False
    return (
        entry.level >= SEAL_LEVEL
        or (entry.data_class in IDENTITY_CLASSES and entry.level > PSEUDONYM_LEVEL)
        or entry.quasi
    )


class SealingWalkError(MedfedError, RuntimeError):
    """The result cannot be matched to its operation; the caller must not answer."""


def seal_result_data(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    data: dict[str, Any],
    catalogue: Catalogue,
    seal: Seal,
) -> int:
    """Replace, in place, every non-null sealed value of ``data`` by ``seal(path, value)`` (in
    walk order, which numbers the values); return how many were sealed."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        raise SealingWalkError("operation not found in the document")
    root = schema.get_root_type(operation.operation)
    if root is None:
        raise SealingWalkError("schema has no root type for the operation")
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walker = _Walker(schema, fragments, catalogue, seal)
    walker.walk(data, root, [operation.selection_set], [])
    return walker.count


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        catalogue: Catalogue,
        seal: Seal,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.catalogue = catalogue
        self.seal = seal
        self.count = 0
        # Keyed by the ids of AST nodes, which the document keeps alive during the walk.
        self._collected: dict[tuple[int, ...], dict[str, list[FieldNode]]] = {}
        self._plans: dict[tuple, list[tuple[str, bool, Any, tuple[SelectionSetNode, ...]]]] = {}

    def walk(
        self,
        value: Any,
        gql_type: Any,
        selections: Sequence[SelectionSetNode],
        path: list[str | int],
    ) -> None:
        if value is None:
            return
        while isinstance(gql_type, GraphQLNonNull):
            gql_type = gql_type.of_type
        if isinstance(gql_type, GraphQLList):
            if isinstance(value, list):
                for index, item in enumerate(value):
                    self.walk(item, gql_type.of_type, selections, [*path, index])
            return
        if not isinstance(value, dict):
            return
        named = get_named_type(gql_type)
        fields = self._collect(selections)
        runtime = self._runtime_types(named, value, fields)
        for key, sealed, field_type, child in self._plan(runtime, selections, fields):
            if key not in value or value[key] is None:
                continue
            if sealed:
                value[key] = self.seal([*path, key], value[key])
                self.count += 1
            else:
                self.walk(value[key], field_type, child, [*path, key])

    def _plan(
        self,
        runtime: list[GraphQLObjectType],
        selections: Sequence[SelectionSetNode],
        fields: dict[str, list[FieldNode]],
    ) -> list[tuple[str, bool, Any, tuple[SelectionSetNode, ...]]]:
        """Per response key: sealed, or walked into with (type, child selections). The same
        for every item of a list, so it is decided once per (runtime types, selections)."""
        cache_key = (tuple(t.name for t in runtime), tuple(id(s) for s in selections))
        plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        plan = []
        for key, nodes in fields.items():
            names = {n.name.value for n in nodes}
            if all(name.startswith("__") for name in names):
                continue
            if self._sealed(runtime, names):
                plan.append((key, True, None, ()))
                continue
            child = tuple(n.selection_set for n in nodes if n.selection_set is not None)
            field_type = self._field_type(runtime, names)
            if child and field_type is not None:
                plan.append((key, False, field_type, child))
            elif child:
                # An object value whose field the schema does not know: nothing tells us what
                # is inside, so it is not shown in the clear.
                plan.append((key, True, None, ()))
        self._plans[cache_key] = plan
        return plan

    def _collect(self, selections: Sequence[SelectionSetNode]) -> dict[str, list[FieldNode]]:
        # Type conditions are ignored: a key is in the data only if its field ran, and
        # _sealed looks at every node merged under a key.
        cache_key = tuple(id(s) for s in selections)
        cached = self._collected.get(cache_key)
        if cached is not None:
            return cached
        fields = self._collected[cache_key] = {}
        pending = list(selections)
        seen: set[str] = set()
        while pending:
            for selection in pending.pop().selections:
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    fields.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    pending.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is None:
                        raise SealingWalkError(f"unknown fragment {name}")
                    if name not in seen:
                        seen.add(name)
                        pending.append(fragment.selection_set)
        return fields

    def _runtime_types(
        self, named: Any, value: dict[str, Any], fields: dict[str, list[FieldNode]]
    ) -> list[GraphQLObjectType]:
        if isinstance(named, GraphQLObjectType):
            return [named]
        if not is_abstract_type(named):
            return []
        for key, nodes in fields.items():
            if any(n.name.value == "__typename" for n in nodes):
                concrete = self.schema.get_type(str(value.get(key)))
                if isinstance(concrete, GraphQLObjectType):
                    return [concrete]
        return list(self.schema.get_possible_types(named))

    def _sealed(self, types: list[GraphQLObjectType], names: set[str]) -> bool:
        # Conservative: sealed if any possible type or any merged field name says so.
        for gql_type in types:
            gate = self._gate_level(gql_type.name)
            for name in names:
                if sealed_entry(self.catalogue.field(gql_type.name, name), gate):
                    return True
        return False

    def _gate_level(self, type_name: str) -> int:
        entry = self.catalogue.types.get(type_name)
        if entry is None or entry.gate is None:
            return 0
        parent, _, name = entry.gate.partition(".")
        gate = self.catalogue.field(parent, name)
        return gate.level if gate else 0

    @staticmethod
    def _field_type(types: list[GraphQLObjectType], names: set[str]) -> Any:
        for gql_type in types:
            for name in names:
                if name in gql_type.fields:
                    return gql_type.fields[name].type
        return None
