"""The data catalogue (``security/catalogue.toml``): class and GB/T 39725 level per field.

One declarative file is the single source of truth for what a field is: the policy decides
from it, projections take their masks and their "is this guarded" from it, and the schema
shows it in every field's description.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from security import masking
from security.errors import MedfedError

CATALOGUE_FILE = Path(__file__).with_name("catalogue.toml")

CLASSES: tuple[str, ...] = (
    "identity",
    "contact",
    "enrollment",
    "visit",
    "diagnosis",
    "prescription",
    "lab_result",
    "imaging",
    "settlement",
    "filing",
    "audit",
    "aggregate",
)

MASKS: Mapping[str, Callable[[Any], Any]] = {
    "name": masking.mask_name,
    "id_number": masking.mask_id_number,
    "phone": masking.mask_phone,
    "birth_date": masking.mask_birth_date,
    "text": masking.mask_text,
}


class CatalogueError(MedfedError, ValueError):
    """The catalogue file is malformed; the gateway must not start on it."""


@dataclass(frozen=True, slots=True)
class FieldEntry:
    type_name: str
    name: str
    data_class: str
    level: int
    mask: str | None = None
    quasi: bool = False  # a quasi-identifier of its own level (the person's insured region)

    @property
    def path(self) -> str:
        return f"{self.type_name}.{self.name}"

    @property
    def mask_fn(self) -> Callable[[Any], Any] | None:
        return None if self.mask is None else MASKS[self.mask]

    def describe(self) -> str:
        return f"Class: {self.data_class}, level {self.level}."


@dataclass(frozen=True)
class TypeEntry:
    name: str
    fields: Mapping[str, FieldEntry]
    row: str | None = None
    gate: str | None = None
    links: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Catalogue:
    types: Mapping[str, TypeEntry]
    public_types: frozenset[str]

    def field(self, type_name: str, field_name: str) -> FieldEntry | None:
        entry = self.types.get(type_name)
        return None if entry is None else entry.fields.get(field_name)

    def fields(self) -> Iterator[FieldEntry]:
        for entry in self.types.values():
            yield from entry.fields.values()

    def classes_in_use(self) -> list[str]:
        used = {f.data_class for f in self.fields()}
        return [c for c in CLASSES if c in used]

    def is_public_type(self, name: str) -> bool:
        """Types that carry nothing personal: listed ones, and connection plumbing whose nodes
        are catalogued themselves."""
        if name in self.public_types:
            return True
        for suffix in ("Connection", "Edge"):
            base = name.removesuffix(suffix)
            if base != name and (base in self.types or base in self.public_types):
                return True
        return False


def _problem(where: str, text: str) -> CatalogueError:
    return CatalogueError(f"{CATALOGUE_FILE.name}: {where}: {text}")


def parse(raw: Mapping[str, Any]) -> Catalogue:
    types: dict[str, TypeEntry] = {}
    for type_name, spec in raw.get("types", {}).items():
        fields: dict[str, FieldEntry] = {}
        for name, f in spec.get("fields", {}).items():
            where = f"{type_name}.{name}"
            cls, level, mask = f.get("class"), f.get("level"), f.get("mask")
            quasi = f.get("quasi", False)
            if not isinstance(quasi, bool):
                raise _problem(where, f"quasi {quasi!r} must be true or false")
            if cls not in CLASSES:
                raise _problem(where, f"class {cls!r} is not one of {', '.join(CLASSES)}")
            if not isinstance(level, int) or not 1 <= level <= 5:
                raise _problem(where, f"level {level!r} must be 1-5")
            if mask is not None and mask not in MASKS:
                raise _problem(where, f"mask {mask!r} is not one of {', '.join(MASKS)}")
            fields[name] = FieldEntry(type_name, name, cls, level, mask, quasi)
        row = spec.get("row")
        if row is not None and row not in fields:
            raise _problem(type_name, f"row field {row!r} is not catalogued")
        types[type_name] = TypeEntry(
            type_name, fields, row, spec.get("gate"), frozenset(spec.get("links", ()))
        )
    for entry in types.values():
        if entry.gate is not None:
            parent, _, name = entry.gate.partition(".")
            if parent not in types or name not in types[parent].fields:
                raise _problem(entry.name, f"gate {entry.gate!r} is not a catalogued field")
    return Catalogue(types, frozenset(raw.get("public", {}).get("types", ())))


def load(path: Path = CATALOGUE_FILE) -> Catalogue:
    with path.open("rb") as fh:
        return parse(tomllib.load(fh))


@cache
def default_catalogue() -> Catalogue:
    return load()
