"""The hash that names a GraphQL document in telemetry: of its *shape*, never its text.

A hash of the text is no anonymiser: ``person(idNumber: "…")`` holds an ID number, and the
ID space is small once a region and a birth date are guessed, so anyone reading a trace
store or the metrics could hash candidate documents until one matched. The hash is taken
instead over the document as graphql-core parsed it (this request's own parse, never a
second one), printed with every literal replaced by one placeholder, and with what the
client names itself (the operation's name, aliases, variable and fragment names) dropped or
numbered in order of appearance. What is left is the schema's own field, argument, type and
directive names and the document's structure, so two documents that differ only in an ID
number, a date or an alias share one hash.

Only a document that passed validation is hashed: in one that did not, a field or type name
is the client's text too (an unknown field can spell anything).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    NameNode,
    OperationDefinitionNode,
    StringValueNode,
    VariableNode,
    Visitor,
    print_ast,
    visit,
)

_CACHE_SIZE = 1024
PLACEHOLDER = StringValueNode(value="")


class _Normaliser(Visitor):
    """Returns a replacement for each node that carries the client's own text."""

    def __init__(self) -> None:
        super().__init__()
        self.variables: dict[str, NameNode] = {}
        self.fragments: dict[str, NameNode] = {}

    def _numbered(self, seen: dict[str, NameNode], prefix: str, name: str) -> NameNode:
        if name not in seen:
            seen[name] = NameNode(value=f"{prefix}{len(seen) + 1}")
        return seen[name]

    def _literal(self, *_: Any) -> StringValueNode:
        return PLACEHOLDER

    enter_int_value = enter_float_value = enter_string_value = _literal
    enter_boolean_value = enter_enum_value = enter_null_value = _literal
    enter_list_value = enter_object_value = _literal  # their items too, and their count

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> Any:
        if node.name is None:
            return None
        return OperationDefinitionNode(
            operation=node.operation,
            name=None,
            variable_definitions=node.variable_definitions,
            directives=node.directives,
            selection_set=node.selection_set,
        )

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        if node.alias is None:
            return None
        return FieldNode(
            alias=None,
            name=node.name,
            arguments=node.arguments,
            directives=node.directives,
            selection_set=node.selection_set,
        )

    def enter_variable(self, node: VariableNode, *_: Any) -> VariableNode:
        return VariableNode(name=self._numbered(self.variables, "v", node.name.value))

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> FragmentSpreadNode:
        name = self._numbered(self.fragments, "f", node.name.value)
        return FragmentSpreadNode(name=name, directives=node.directives)

    def enter_fragment_definition(self, node: FragmentDefinitionNode, *_: Any) -> Any:
        return FragmentDefinitionNode(
            name=self._numbered(self.fragments, "f", node.name.value),
            variable_definitions=node.variable_definitions,
            type_condition=node.type_condition,
            directives=node.directives,
            selection_set=node.selection_set,
        )


def normalised(document: DocumentNode) -> str:
    """The document's shape as text: literals, names and aliases of the client's gone."""
    return print_ast(visit(document, _Normaliser()))


def shape_hash_uncached(document: DocumentNode) -> str:
    digest = hashlib.sha256(normalised(document).encode("utf-8")).hexdigest()
    return "sha256:" + digest[:16]


# Keyed by the parsed document's identity (the parse cache and the trusted-document store
# hand the same object to every request with that text); the entry keeps it alive, so an
# id is never reused while it is cached.
_hashes: OrderedDict[int, tuple[DocumentNode, str]] = OrderedDict()


def shape_hash(document: DocumentNode) -> str:
    key = id(document)
    hit = _hashes.get(key)
    if hit is not None and hit[0] is document:
        _hashes.move_to_end(key)
        return hit[1]
    digest = shape_hash_uncached(document)
    _hashes[key] = (document, digest)
    if len(_hashes) > _CACHE_SIZE:
        _hashes.popitem(last=False)
    return digest
