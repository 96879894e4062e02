"""``_entities`` representations checked before any ``resolve_reference`` sees them.

A representation is whatever JSON a caller sends (the ``_Any`` scalar): a router sends
``{"__typename": "Person", "personId": "…"}``, but anyone who calls a subgraph directly can
send extra or missing keys, a type this subgraph does not resolve (``Query``, or ``Person`` on
the settlement subgraph), a number for a key or no object at all. Each of those gets a
``BAD_USER_INPUT`` error at its own index, and the valid ones in the same request still
resolve; none reaches Strawberry's resolver, where they became internal errors with a
traceback in the log. The messages never repeat what was sent, and outside dev mode they do
not name the entities or their keys either (that would be a suggestion).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from strawberry.federation.schema_directives import Key
from strawberry.types.base import StrawberryObjectDefinition

from schema.errors import BAD_USER_INPUT

MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class EntityKeys:
    """Per entity type this schema resolves: the field sets of its ``@key`` directives."""

    keys: Mapping[str, tuple[frozenset[str], ...]]

    @classmethod
    def of(cls, type_map: Mapping[str, Any]) -> EntityKeys:
        keys: dict[str, tuple[frozenset[str], ...]] = {}
        for name, concrete in type_map.items():
            definition = getattr(concrete, "definition", None)
            if not isinstance(definition, StrawberryObjectDefinition):
                continue
            if not hasattr(definition.origin, "resolve_reference"):
                continue
            sets = tuple(
                frozenset(str(d.fields).split())
                for d in definition.directives
                if isinstance(d, Key)
            )
            if sets:
                keys[name] = sets
        return cls(keys)


def problem(representation: Any, entities: EntityKeys, *, dev: bool) -> str | None:
    """Why ``representation`` cannot be resolved here, or None when it can."""
    if not isinstance(representation, Mapping):
        return "a representation must be an object with __typename and the entity's key"
    type_name = representation.get("__typename")
    if not isinstance(type_name, str):
        return "a representation needs __typename (a string)"
    sets = entities.keys.get(type_name)
    if sets is None:
        known = f" (one of {', '.join(sorted(entities.keys))})" if dev else ""
        return f"__typename does not name an entity this subgraph resolves{known}"
    given = frozenset(representation) - {"__typename"}
    if given not in sets:
        wanted = " or ".join("/".join(sorted(s)) for s in sets)
        return (
            f"a {type_name} representation holds exactly its key field(s): {wanted}"
            if dev
            else "a representation must hold exactly the entity's key fields"
        )
    for key in given:
        value = representation[key]
        if not isinstance(value, str) or not 0 < len(value) <= MAX_KEY_LENGTH:
            return f"key fields must be strings of 1 to {MAX_KEY_LENGTH} characters"
    return None


def refusal(index: int, reason: str) -> GraphQLError:
    return GraphQLError(
        f"representations[{index}]: {reason}",
        extensions={
            "code": BAD_USER_INPUT,
            "problems": [{"path": ["representations", index], "reason": reason}],
        },
    )
