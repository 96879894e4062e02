"""Differential privacy's contribution bounds, applied at the source: each person's *total*
contribution to the released cells is bounded, not each row's.

The property DP needs is checked on neighbouring data: with and without one heavy person, the
bounded figures differ by at most the bound in L1, for every measure, on SQLite and
PostgreSQL. The positive control: unbounded, the same person moves them by more. And what the
per-row bounds got wrong: a person within the bounds is counted in full, however their rows
are spread over the cells.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from connectors.registry import SourceRegistry
from connectors.sql.engine import create_source_engine
from connectors.statistics.catalogue import STATISTICS
from connectors.statistics.plan import COUNT, PERSONS, Bounds, statement
from tests.connectors.statistics.test_pushdown import CTX
from tests.support.federation import Federation, make_id_number
from tests.support.postgres import PG_URL
from tests.support.statistics import add_settlement

SETTLEMENT = STATISTICS["settlement"]
DIMS = ("MONTH", "MEDICAL_TYPE")
SUMS = tuple(SETTLEMENT.sums)
BOUNDS = Bounds(rows=8, cells=3, totals={s: 150_000 for s in SUMS})
TYPES = ("OUTPATIENT", "INPATIENT", "CHRONIC_OUTPATIENT")


async def _federation(data_dir, backend, request) -> Federation:
    if backend == "postgres":
        schema = request.getfixturevalue("pg_schema")
        return await Federation(data_dir, pg_schema=schema, pg_url=PG_URL).setup()
    return await Federation(data_dir).setup()


async def _drop(fed: Federation) -> None:
    if fed.settings.sources[0].schema is None:
        return
    engine = create_source_engine(fed.settings.sources[0])
    try:
        async with engine.begin() as conn:
            for spec in fed.settings.sources:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{spec.schema}" CASCADE'))
    finally:
        await engine.dispose()


async def _person(fed: Federation, seq: int, settlements: list[tuple[int, str, int]]) -> str:
    """A person with settlements (month of 2020, medical type, total in fen)."""
    ref = await fed.add_person(make_id_number(seq=seq), "张三")
    visits = await fed.add_visits(ref, len(settlements), with_prescriptions=False)
    for visit, (month, med_type, total) in zip(visits, settlements, strict=True):
        await add_settlement(
            fed, ref, visit, when=datetime(2020, month, 3), total_fen=total, med_type=med_type
        )
    return ref


async def _cells(source, bounds: Bounds | None, without: str | None = None) -> dict:
    located = SETTLEMENT.plan(source, CTX)
    assert located is not None
    where = [located.plan.person != without] if without else []
    stmt = statement(located.plan, DIMS, (DIMS,), SUMS, where=where, bounds=bounds)
    async with source.engine.connect() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    names = (COUNT, PERSONS, *SUMS)
    return {(r["d_0"], r["d_1"]): {n: float(r[f"m_{n}"]) for n in names} for r in rows}


def _l1(a: dict, b: dict, measure: str) -> float:
    return sum(abs(a.get(k, {}).get(measure, 0) - b.get(k, {}).get(measure, 0)) for k in {*a, *b})


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_one_person_moves_the_bounded_figures_by_at_most_the_bound(
    data_dir, backend, request
):
    fed = await _federation(data_dir, backend, request)
    registry = SourceRegistry(fed.settings.sources)
    try:
        # Light persons: within every bound, whatever their spread over the cells.
        for seq in range(5):
            rows = [(1 + (seq + i) % 4, TYPES[i % 3], 30_000 + 1_000 * i) for i in range(3)]
            await _person(fed, 100 + seq, rows)
        # A heavy one: 24 settlements over 6 months and 3 types (18 cells), 60,000 fen each.
        heavy = await _person(
            fed, 200, [(1 + (i // 3) % 6, TYPES[i % 3], 60_000) for i in range(24)]
        )
        (source,) = [s for s in registry if s.name == "bureau-330000"]

        bounded = await _cells(source, BOUNDS)
        bounded_without = await _cells(source, BOUNDS, without=heavy)
        exact = await _cells(source, None)
        exact_without = await _cells(source, None, without=heavy)

        limits = {COUNT: BOUNDS.rows, PERSONS: BOUNDS.cells, **BOUNDS.totals}
        for measure, limit in limits.items():
            moved = _l1(bounded, bounded_without, measure)
            assert moved <= limit, (measure, moved, limit)
            # The heavy person is scaled down to the bound, not dropped.
            assert moved == pytest.approx(limit, rel=1e-6), measure
            # Positive control: unbounded, the same person moves the figures beyond it.
            assert _l1(exact, exact_without, measure) > limit, measure

        # Without the heavy person everyone is within the bounds: every figure is exact.
        assert bounded_without.keys() == exact_without.keys()
        for key, figures in exact_without.items():
            assert bounded_without[key] == pytest.approx(figures, rel=1e-9), key

        # The heavy person's share is spread as their rows are: 24 rows in 18 cells, scaled
        # by 8/24 (one third of a row per settlement), never cut from the later months.
        for key, figures in exact.items():
            theirs = figures[COUNT] - exact_without.get(key, {}).get(COUNT, 0)
            if theirs:
                added = bounded[key][COUNT] - bounded_without.get(key, {}).get(COUNT, 0)
                assert added == pytest.approx(theirs * BOUNDS.rows / 24, rel=1e-6), key
    finally:
        await registry.dispose()
        await _drop(fed)
