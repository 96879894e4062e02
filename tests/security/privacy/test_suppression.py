"""Small-cell suppression: no suppressed cell can be recovered from the published cells and
totals, checked by an exact linear attacker (tests/support/disclosure.py) on random tables."""

from __future__ import annotations

import random
from itertools import combinations

import pytest

from security.privacy.suppression import suppress
from tests.support.disclosure import disclosed


def _cube(dims, rows):
    """Every level's counts of ``rows`` (one person each): the cube the sources return."""
    cube = {}
    for size in range(len(dims) + 1):
        for level in combinations(dims, size):
            cells = cube.setdefault(level, {})
            for row in rows:
                key = tuple(row[dims.index(d)] for d in level)
                cells[key] = cells.get(key, 0) + 1
    return cube


def _random_rows(rng, sizes, n, skew):
    return [
        tuple(f"v{min(int(rng.expovariate(skew)), size - 1)}" for size in sizes) for _ in range(n)
    ]


def _published(cube, pattern):
    return {
        (level, key): n
        for level, cells in cube.items()
        for key, n in cells.items()
        if not pattern.hides(level, key)
    }


def _finest_keys(dims, cube, pattern):
    return set(cube[tuple(dims)]) | {k for lv, k in pattern.suppressed if lv == tuple(dims)}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dims", [("a", "b"), ("a", "b", "c")])
def test_no_suppressed_cell_is_recoverable_from_the_totals(seed, dims):
    rng = random.Random(seed)
    sizes = [rng.randint(3, 6) for _ in dims]
    for _attempt in range(20):  # a table with small cells, else the test means nothing
        cube = _cube(dims, _random_rows(rng, sizes, rng.randint(150, 400), 0.6))
        pattern = suppress(dims, cube, k=10)
        if pattern.primary:
            break
    assert pattern.primary
    hidden = set(pattern.suppressed)
    found = disclosed(dims, _published(cube, pattern), hidden, _finest_keys(dims, cube, pattern))
    assert not found, f"recovered {sorted(found)[:3]}"
    # Every cell under k persons is hidden, at every level.
    for level, cells in cube.items():
        for key, n in cells.items():
            if n < 10:
                assert pattern.hides(level, key)


def test_the_attacker_recovers_cells_when_only_primaries_are_hidden():
    """Positive control: without complementary suppression the totals give the cells away."""
    rng = random.Random(3)
    dims = ("a", "b")
    cube = _cube(dims, _random_rows(rng, [4, 5], 300, 0.6))
    pattern = suppress(dims, cube, k=10)
    hidden = set(pattern.primary)
    published = {
        (lv, key): n
        for lv, cells in cube.items()
        for key, n in cells.items()
        if (lv, key) not in hidden
    }
    found = disclosed(dims, published, hidden, set(cube[dims]))
    assert found, "primaries alone must be recoverable, else the attacker proves nothing"
    assert len(pattern.suppressed) > len(pattern.primary)


def test_the_subtraction_attack_on_one_row_fails():
    """The classic attack: row total minus the row's published cells."""
    dims = ("month", "type")
    rows = [("01", "IN")] * 3 + [("01", "OUT")] * 40 + [("02", "IN")] * 25 + [("02", "OUT")] * 30
    cube = _cube(dims, rows)
    pattern = suppress(dims, cube, k=10)
    assert pattern.hides(dims, ("01", "IN"))
    # The row total is published, so the row's other cell must be hidden too, and likewise
    # down the column: a rectangle of four hidden cells.
    assert not pattern.hides(("month",), ("01",))
    assert pattern.hides(dims, ("01", "OUT"))
    assert pattern.hides(dims, ("02", "IN")) and pattern.hides(dims, ("02", "OUT"))


def test_a_grand_total_under_k_hides_everything():
    dims = ("a",)
    cube = _cube(dims, [("x",)] * 4 + [("y",)] * 3)
    pattern = suppress(dims, cube, k=10)
    assert pattern.everything
    assert pattern.hides((), ())


def test_nothing_is_hidden_when_every_cell_is_large():
    dims = ("a", "b")
    cube = _cube(dims, [(a, b) for a in "xy" for b in "uv" for _ in range(12)])
    pattern = suppress(dims, cube, k=10)
    assert not pattern.suppressed and not pattern.everything
