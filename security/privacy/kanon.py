"""k-anonymity with l-diversity for de-identified extracts: generalise, then suppress.

Each quasi-identifier has a hierarchy of generalisations, finest first (birth year, 5-, 10-,
20-year band, ``*``; city, province, ``*``; month, quarter, year, ``*``). Starting from the
grade's finest allowed level, the rows are grouped into equivalence classes by their
generalised quasi-identifiers. A class is safe when it holds at least ``k`` distinct persons
and at least ``l`` distinct values of the sensitive attribute (the diagnosis). While the
unsafe classes hold more than ``max_suppressed`` of the rows, the quasi-identifier with the
most distinct values is generalised one level more (full-domain generalisation); then the
unsafe classes that are left are suppressed (their rows removed). What is returned is
therefore k-anonymous and l-diverse by construction, and the caller learns the levels used
and how much was suppressed, for the data dictionary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hierarchy:
    name: str  # the column
    levels: tuple[tuple[str, Callable[[Any], str]], ...]  # (label, generalise), finest first

    @property
    def top(self) -> int:
        return len(self.levels) - 1


def _band(width: int) -> Callable[[Any], str]:
    def band(year: Any) -> str:
        low = int(year) // width * width
        return f"{low}-{low + width - 1}"

    return band


def _star(_value: Any) -> str:
    return "*"


AGE = Hierarchy(
    "birth",
    (
        ("birth year", lambda y: str(int(y))),
        ("5-year band", _band(5)),
        ("10-year band", _band(10)),
        ("20-year band", _band(20)),
        ("suppressed", _star),
    ),
)
REGION = Hierarchy(
    "region",
    (
        ("city", lambda code: f"{str(code)[:4]}00"),
        ("province", lambda code: f"{str(code)[:2]}0000"),
        ("suppressed", _star),
    ),
)
GENDER = Hierarchy("gender", (("gender", str), ("suppressed", _star)))
PERIOD = Hierarchy(
    "period",
    (
        ("month", lambda m: str(m)[:7]),
        ("quarter", lambda m: f"{str(m)[:4]}-Q{(int(str(m)[5:7]) - 1) // 3 + 1}"),
        ("year", lambda m: str(m)[:4]),
        ("suppressed", _star),
    ),
)


@dataclass(frozen=True)
class Anonymised:
    rows: list[dict[str, Any]]
    levels: dict[str, str]  # quasi-identifier -> the level label used
    suppressed_rows: int
    classes: int


def anonymise(
    records: Sequence[Mapping[str, Any]],
    *,
    person: str,
    sensitive: str,
    hierarchies: Sequence[Hierarchy],
    start: Mapping[str, int],
    k: int,
    l: int,  # noqa: E741
    max_suppressed: float = 0.05,
) -> Anonymised:
    """``records`` hold the raw quasi-identifier values under each hierarchy's name."""
    levels = {h.name: min(start.get(h.name, 0), h.top) for h in hierarchies}
    while True:
        keyed = [
            (tuple(h.levels[levels[h.name]][1](r[h.name]) for h in hierarchies), r) for r in records
        ]
        persons: dict[tuple, set] = {}
        values: dict[tuple, set] = {}
        for key, r in keyed:
            persons.setdefault(key, set()).add(r[person])
            values.setdefault(key, set()).add(r[sensitive])
        unsafe = {key for key in persons if len(persons[key]) < k or len(values[key]) < l}
        lost = sum(1 for key, _ in keyed if key in unsafe)
        open_ = [h for h in hierarchies if levels[h.name] < h.top]
        if lost <= max_suppressed * len(keyed) or not open_:
            break
        # Generalise the quasi-identifier that splits the rows most.
        widest = max(open_, key=lambda h: len({key[hierarchies.index(h)] for key, _ in keyed}))
        levels[widest.name] += 1
    rows = []
    for key, r in keyed:
        if key in unsafe:
            continue
        row = dict(r)
        for h, value in zip(hierarchies, key, strict=True):
            row[h.name] = value
        rows.append(row)
    return Anonymised(
        rows,
        {h.name: h.levels[levels[h.name]][0] for h in hierarchies},
        lost,
        len(persons) - len(unsafe),
    )
