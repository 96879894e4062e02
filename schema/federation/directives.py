"""``@requiresScopes``/``@policy`` on protected fields, derived from the data catalogue.

A router that enforces them can refuse early; medfed never relies on it (Hive Gateway does not
enforce them, Apollo Router needs a licence): each subgraph decides every field itself.
Scopes name the GB/T 39725 level and policies the data class, e.g.
``@requiresScopes(scopes: [["medfed:level:4"]]) @policy(policies: [["medfed:class:LAB_RESULT"]])``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

from strawberry.federation.schema_directives import Policy, RequiresScopes
from strawberry.types.base import get_object_definition

import schema.types
from security.catalogue import Catalogue, default_catalogue

# Levels 1-2 are public or internal data: nothing for a router to check.
PROTECTED_FROM_LEVEL = 3

_annotated = False


def scopes_for(level: int) -> list[list[str]]:
    return [[f"medfed:level:{level}"]]


def policies_for(data_class: str) -> list[list[str]]:
    return [[f"medfed:class:{data_class}"]]


def _catalogued_types() -> Iterator[type]:
    for module in pkgutil.iter_modules(schema.types.__path__):
        loaded = importlib.import_module(f"schema.types.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, type) and get_object_definition(value) is not None:
                yield value


def annotate_protected_fields(catalogue: Catalogue | None = None) -> None:
    """Add the directives once, before any schema is built, so the merged schema and every
    subgraph print the same SDL whatever order they are built in."""
    global _annotated
    if _annotated:
        return
    catalogue = catalogue or default_catalogue()
    for cls in _catalogued_types():
        definition = get_object_definition(cls)
        for field in definition.fields:
            name = field.graphql_name or _camel(field.python_name)
            entry = catalogue.field(definition.name, name)
            if entry is None or entry.level < PROTECTED_FROM_LEVEL:
                continue
            if any(isinstance(d, RequiresScopes) for d in field.directives):
                continue
            field.directives = [
                *field.directives,
                RequiresScopes(scopes=scopes_for(entry.level)),
                Policy(policies=policies_for(entry.data_class)),
            ]
    _annotated = True


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
