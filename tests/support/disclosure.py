"""An attacker on suppressed tables, written without the code it attacks.

Given a table's published cells at every level (the finest cells and all margins, the
grand total included) and which cells are hidden, it sets up the linear system an intruder
has: every published cell is the sum of the finest cells under it. A hidden cell's value is
*disclosed* when it is a linear combination of published values, i.e. when its indicator
vector over the unknown finest cells lies in the row space of the published equations. The
check is exact (Gaussian elimination over the rationals), so "not disclosed" means no
subtraction or any other linear combination of the totals recovers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

Level = tuple[str, ...]
Key = tuple[str, ...]


def _under(dims: Sequence[str], level: Level, key: Key, finest: Key) -> bool:
    at = dict(zip(level, key, strict=True))
    return all(finest[dims.index(d)] == v for d, v in at.items())


class _Basis:
    """Row-reduced vectors (dicts column -> Fraction), pivot on the lowest column."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[int, Fraction]] = {}

    def reduce(self, vector: dict[int, Fraction]) -> dict[int, Fraction]:
        v = {c: x for c, x in vector.items() if x}
        while v:
            pivot = min(v)
            row = self.rows.get(pivot)
            if row is None:
                return v
            factor = v[pivot] / row[pivot]
            for c, x in row.items():
                value = v.get(c, Fraction(0)) - factor * x
                if value:
                    v[c] = value
                else:
                    v.pop(c, None)
        return v

    def add(self, vector: dict[int, Fraction]) -> None:
        v = self.reduce(vector)
        if v:
            self.rows[min(v)] = v


def disclosed(
    dims: Sequence[str],
    published: Mapping[tuple[Level, Key], int],
    hidden: set[tuple[Level, Key]],
    finest_keys: set[Key],
) -> set[tuple[Level, Key]]:
    """The hidden cells whose value follows from the published ones."""
    dims = tuple(dims)
    finest_level = dims
    unknown = sorted(
        k for k in finest_keys if (finest_level, k) not in published
    )  # hidden finest cells (and hidden empty ones)
    column = {k: i for i, k in enumerate(unknown)}
    basis = _Basis()
    for level, key in published:
        vector = {column[f]: Fraction(1) for f in unknown if _under(dims, level, key, f)}
        if vector:
            basis.add(vector)
    found = set()
    for level, key in hidden:
        vector = {column[f]: Fraction(1) for f in unknown if _under(dims, level, key, f)}
        if not vector or not basis.reduce(vector):
            found.add((level, key))
    return found
