"""Which fields a query asks for under the current field, through aliases and fragments.

Objects are built with only the requested personal fields opened, so the guard decides (and
the audit records) exactly what the caller asked for, and nothing unasked is decrypted.
"""

from __future__ import annotations

from collections.abc import Iterable

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


def _flatten(selections: Iterable[Selection]) -> list[SelectedField]:
    out: list[SelectedField] = []
    for sel in selections:
        if isinstance(sel, SelectedField):
            out.append(sel)
        elif isinstance(sel, FragmentSpread | InlineFragment):
            out.extend(_flatten(sel.selections))
    return out


def requested(info: strawberry.Info, *path: str) -> frozenset[str]:
    """GraphQL names requested below the current field, following ``path`` (for example
    ``("edges", "node")`` and ``("nodes",)`` both lead to a connection's node fields)."""
    level = _flatten(info.selected_fields)
    level = _flatten(s for f in level for s in f.selections)
    for step in path:
        level = _flatten(s for f in level if f.name == step for s in f.selections)
    return frozenset(f.name for f in level)


def requested_nodes(info: strawberry.Info) -> frozenset[str]:
    """Node fields of a connection, asked through ``edges { node }`` or ``nodes``."""
    return requested(info, "edges", "node") | requested(info, "nodes")
