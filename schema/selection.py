"""Which fields a query asks for under the current field, through aliases and fragments.

Objects are built with only the requested personal fields opened, so the guard decides (and
the audit records) exactly what the caller asked for, and nothing unasked is decrypted.

Read from graphql-core's syntax tree of the operation (the field's nodes and the document's
fragments) rather than Strawberry's ``selected_fields``, which converts the whole subtree
into new objects on every call: the same names, a fifth of the cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode


def _fields(nodes: Iterable[Any], fragments: dict[str, Any]) -> Iterator[FieldNode]:
    """The fields of these selections, fragments flattened (as Strawberry's ``_flatten``)."""
    for node in nodes:
        if isinstance(node, FieldNode):
            yield node
        elif isinstance(node, InlineFragmentNode):
            yield from _fields(node.selection_set.selections, fragments)
        elif isinstance(node, FragmentSpreadNode):
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set.selections, fragments)


def _children(fields: Iterable[FieldNode], fragments: dict[str, Any]) -> list[FieldNode]:
    return [
        child
        for f in fields
        if f.selection_set is not None
        for child in _fields(f.selection_set.selections, fragments)
    ]


def requested(info: strawberry.Info, *path: str) -> frozenset[str]:
    """GraphQL names requested below the current field, following ``path`` (for example
    ``("edges", "node")`` and ``("nodes",)`` both lead to a connection's node fields)."""
    raw = info._raw_info
    fragments = raw.fragments
    level = _children(raw.field_nodes, fragments)
    for step in path:
        level = _children((f for f in level if f.name.value == step), fragments)
    return frozenset(f.name.value for f in level)


def requested_nodes(info: strawberry.Info) -> frozenset[str]:
    """Node fields of a connection, asked through ``edges { node }`` or ``nodes``."""
    return requested(info, "edges", "node") | requested(info, "nodes")


def asks_edges(info: strawberry.Info) -> bool:
    """Whether the connection's ``edges`` (and so a cursor per item) are asked for."""
    return "edges" in requested(info)
