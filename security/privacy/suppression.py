"""Small-cell suppression with complementary suppression, over a whole table cube.

The cube is every level (subset) of a grade's dimensions: the finest table and all its
margins down to the grand total, as the sources computed them. A cell whose persons are
fewer than ``k`` is suppressed (primary). Each primary is then protected by a *hypercube*
(Repsilber's method, extended to the margins): for every dimension of the primary's level a
partner value is chosen, for every other dimension one fixed value, and the 2^n finest cells
at the corners, with every margin of them that keeps all the hypercube's dimensions, are
suppressed too. Adding +t and -t alternately at the corners changes none of the published
cells, at any level (every published sum either contains a pair of opposite corners or none),
and changes the primary by t: so the published table, with all its row, column and grand
totals, fits the true value and every value near it, and no suppressed cell can be recovered
by subtraction or any other linear combination. The corners are chosen among non-empty
cells, so t can move both ways while all counts stay non-negative.

The pattern depends only on the cube's counts, never on which part a caller asks for: every
query at a SUPPRESSED grade is a view of the same pattern, so two queries cannot be combined
to undo it (linked tables). The caller asks for a level and a slice; the gateway computes
the cube of the grade's dimensions and shows the part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, islice, product

Level = tuple[str, ...]
Key = tuple[str, ...]
Cell = tuple[Level, Key]
MAX_CANDIDATES = 400  # hypercubes tried per primary before the best partial one is taken


@dataclass(frozen=True)
class Pattern:
    suppressed: frozenset[Cell]
    primary: frozenset[Cell]
    everything: bool = False  # the grand total itself is under k: nothing may be shown

    def hides(self, level: Level, key: Key) -> bool:
        return self.everything or (level, key) in self.suppressed


def suppress(dims: Sequence[str], persons: Mapping[Level, Mapping[Key, int]], k: int) -> Pattern:
    """The suppression pattern of a cube. ``persons[level][key]`` is a lower bound of the
    persons in each non-empty cell; ``persons[tuple(dims)]`` is the finest table."""
    dims = tuple(dims)
    finest = persons.get(dims, {})
    primary = sorted(
        (level, key) for level, cells in persons.items() for key, n in cells.items() if n < k
    )
    if any(not level for level, _ in primary):
        everything = {(level, key) for level, cells in persons.items() for key in cells}
        return Pattern(frozenset(everything), frozenset(primary), everything=True)
    levels = [tuple(c) for size in range(len(dims) + 1) for c in combinations(dims, size)]
    values = {d: sorted({key[i] for key in finest}) for i, d in enumerate(dims)}
    suppressed: set[Cell] = set(primary)
    protected: set[Cell] = set()
    for level, key in primary:
        if (level, key) in protected:
            continue  # an earlier hypercube already moves this cell
        chosen = _hypercube(dims, level, key, values, finest, persons, levels, suppressed)
        if chosen is None:  # no other value anywhere: the cell is its own margin's twin
            everything = {(lv, ky) for lv, cells in persons.items() for ky in cells}
            return Pattern(frozenset(everything), frozenset(primary), everything=True)
        suppressed |= chosen
        protected |= chosen
    return Pattern(frozenset(suppressed), frozenset(primary))


def _hypercube(
    dims: Level,
    level: Level,
    key: Key,
    values: Mapping[str, list[str]],
    finest: Mapping[Key, int],
    persons: Mapping[Level, Mapping[Key, int]],
    levels: list[Level],
    suppressed: set[Cell],
) -> set[Cell] | None:
    at = dict(zip(level, key, strict=True))
    # Dimensions of the level with another value to pair with; a dimension with one value
    # only is held fixed (its margin is the same cell, protected by the same hypercube).
    free = tuple(d for d in level if len(values[d]) > 1)
    if not free:
        return None
    others = [d for d in dims if d not in level]

    def size(d: str, v: str) -> int:
        return persons.get((d,), {}).get((v,), 0)

    partners = [
        sorted((v for v in values[d] if v != at[d]), key=lambda v: size(d, v)) for d in free
    ]
    lifts = [sorted(values[d], key=lambda v: -size(d, v)) for d in others]
    kept = [lv for lv in levels if set(free) <= set(lv)]
    positions = {lv: [dims.index(d) for d in lv] for lv in kept}
    best: tuple[tuple[int, int], list[Key]] | None = None
    for choice in islice(product(*partners, *lifts), MAX_CANDIDATES):
        partner = dict(zip(free, choice[: len(free)], strict=True))
        lift = dict(zip(others, choice[len(free) :], strict=True))
        corners = []
        for signs in product((False, True), repeat=len(free)):
            flipped = {d: partner[d] for d, flip in zip(free, signs, strict=True) if flip}
            corners.append(tuple(flipped.get(d, at.get(d, lift.get(d))) for d in dims))
        empty = sum(1 for corner in corners if corner not in finest)
        fresh = sum(1 for corner in corners if (dims, corner) not in suppressed)
        cost = (empty, fresh)
        if best is None or cost < best[0]:
            best = (cost, corners)
            if empty == 0:
                break  # candidates come cheapest first: the first full hypercube will do
    if best is None:
        return None
    corners = best[1]
    return {(lv, tuple(corner[i] for i in positions[lv])) for corner in corners for lv in kept}
