"""Statistics are pushed down: one statement per source, aggregates only in its result, and
the merged partials equal the totals computed independently from the rows."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

from connectors.domain.recognition import RecognitionCatalogue
from connectors.fanout import Deadline
from connectors.registry import SourceRegistry
from connectors.sources import SourceSpec
from connectors.sql.engine import create_source_engine
from connectors.statistics.catalogue import STATISTICS, Context, Institutions
from connectors.statistics.plan import Bounds, result_columns, statement
from connectors.statistics.run import Query, Scope, all_levels, run
from tests.support.federation import INSTITUTIONS, Federation, make_id_number
from tests.support.postgres import PG_URL
from tests.support.statistics import add_settlement, watch

# What may never appear in a statistics statement at all, and what may never be a result.
NEVER_IN_SQL = re.compile(r"_enc\b|_bidx\b|\bpsn_no\b|\bpatient_no\b|\bmdtrt_id\b|\bname\b")
RESULT = re.compile(r"^(lvl|d_\d+|m_[a-z_]+)$")
CTX = Context(
    Institutions({code: level for code, _n, level, *_ in INSTITUTIONS}),
    RecognitionCatalogue(),
    datetime(2020, 11, 1),
)


class _Spec:
    def __init__(self, kind: str, institution: str | None = None) -> None:
        self.spec = SourceSpec(name=kind, kind=kind, url="sqlite://", institution=institution)


@pytest.mark.parametrize("name", sorted(STATISTICS))
@pytest.mark.parametrize("bounded", [False, True])
def test_every_statistics_statement_returns_aggregates_only(name, bounded):
    stat = STATISTICS[name]
    dims = tuple(stat.dimensions)[:4]
    levels = (dims,) if bounded else all_levels(dims)
    bounds = Bounds(5, 3, {s: v.per_person for s, v in stat.sums.items()}) if bounded else None
    for kind in stat.kinds:
        located = stat.plan(_Spec(kind, "H33010600001" if kind == "hospital" else None), CTX)
        assert located is not None
        stmt = statement(located.plan, dims, levels, tuple(stat.sums), bounds=bounds)
        names = [c.name for c in stmt.selected_columns]
        assert names == result_columns(dims, tuple(stat.sums))
        assert all(RESULT.match(n) for n in names)
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            sql = str(stmt.compile(dialect=dialect))
            assert not NEVER_IN_SQL.search(sql), sql
            if kind == "directory":
                continue
            if bounded:
                # The pseudonym is read only to group a person's rows and total them.
                assert "PARTITION BY cells.p" in sql
                outer = sql
            else:
                # The pseudonym is read only to be counted.
                assert "count(DISTINCT cells.p)" in sql
                outer = sql[sql.index("SELECT", sql.index("cells AS") + 10) :]
            assert "person_ref" not in outer.split("FROM", 1)[0]
            assert ".p," not in outer.split("FROM", 1)[0]


def test_a_bounded_statement_answers_the_released_cells_only():
    stat = STATISTICS["settlement"]
    located = stat.plan(_Spec("bureau"), CTX)
    bounds = Bounds(5, 3, {s: v.per_person for s, v in stat.sums.items()})
    dims = ("MONTH", "MEDICAL_TYPE")
    with pytest.raises(ValueError, match="finest level only"):
        statement(located.plan, dims, all_levels(dims), tuple(stat.sums), bounds=bounds)


async def _federation(data_dir, backend, request):
    if backend == "postgres":
        schema = request.getfixturevalue("pg_schema")
        return await Federation(data_dir, pg_schema=schema, pg_url=PG_URL).setup()
    return await Federation(data_dir).setup()


async def _drop(fed) -> None:
    if fed.settings.sources[0].schema is None:
        return
    engine = create_source_engine(fed.settings.sources[0])
    try:
        async with engine.begin() as conn:
            for spec in fed.settings.sources:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{spec.schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_one_statement_per_source_and_exact_merged_totals(data_dir, backend, request):
    fed = await _federation(data_dir, backend, request)
    registry = SourceRegistry(fed.settings.sources)
    try:
        refs = []
        expected = {}
        for i in range(6):
            ref = await fed.add_person(make_id_number(seq=100 + i), "张三")
            refs.append(ref)
            visits = await fed.add_visits(ref, 3, with_prescriptions=False)
            for j, visit in enumerate(visits):
                when = datetime(2020, 1 + j, 5)
                await add_settlement(fed, ref, visit, when=when, total_fen=10_000 * (i + 1))
                key = ("false", f"2020-0{1 + j}")
                n, total, persons = expected.get(key, (0, 0, set()))
                expected[key] = (n + 1, total + 10_000 * (i + 1), persons | {ref})
        other = await fed.add_person(make_id_number(region="370102", seq=300), "李四")
        visit = await fed.add_visits(
            other,
            1,
            source="bureau-370000",
            institution="H37010200003",
            insured="370102",
            with_prescriptions=False,
        )
        await add_settlement(
            fed,
            other,
            visit[0],
            when=datetime(2020, 1, 9),
            total_fen=5_000,
            source="bureau-370000",
            insured="370102",
            institution="H37010200003",
        )
        await fed.add_cross_settlement(refs[0], when=datetime(2020, 2, 3), total_fen=70_000)

        seen = watch(registry)
        dims = ("CROSS_PROVINCE", "MONTH")
        query = Query(STATISTICS["settlement"], dims, all_levels(dims))
        cube = await run(query, list(registry), CTX, Deadline(20))
        assert not cube.failures
        # One statement at each bureau and at the platform; none anywhere else.
        assert {n: len(s) for n, s in seen.statements.items() if s} == {
            "bureau-330000": 1,
            "bureau-370000": 1,
            "bureau-220000": 1,
            "platform": 1,
        }
        for described in (c for cols in seen.columns.values() for c in cols):
            assert described == result_columns(dims, tuple(STATISTICS["settlement"].sums))
        finest = cube.cells[dims]
        for (cross, month), (n, total, persons) in expected.items():
            cell = finest[(cross, month)]
            extra = 1 if month == "2020-01" else 0  # the Shandong person's settlement
            assert cell.count == n + extra
            assert cell.sums["total_cost"] == total + 5_000 * extra
            assert cell.persons_low == len(persons)
            assert cell.persons_high == len(persons) + extra
        assert finest[("true", "2020-02")].count == 1
        # The margin over months of in-province care: two bureaus, disjoint persons here,
        # so the bounds are the largest bureau's count and the sum.
        margin = cube.cells[("CROSS_PROVINCE",)][("false",)]
        assert (margin.persons_low, margin.persons_high) == (6, 7)
        grand = cube.cells[()][()]
        assert grand.count == 18 + 1 + 1
        assert grand.sums["total_cost"] == sum(t for _n, t, _p in expected.values()) + 75_000
    finally:
        await registry.dispose()
        await _drop(fed)


async def test_a_regional_scope_is_applied_in_the_sql(data_dir):
    fed = await Federation(data_dir).setup()
    registry = SourceRegistry(fed.settings.sources)
    try:
        ref = await fed.add_person(make_id_number(), "王五")
        (visit,) = await fed.add_visits(ref, 1, with_prescriptions=False)
        await add_settlement(fed, ref, visit, when=datetime(2020, 3, 1), total_fen=1_000)
        query = Query(STATISTICS["settlement"], ("MONTH",), (("MONTH",),))
        inside = await run(
            Query(**{**query.__dict__, "scope": Scope(prefix="3301")}),
            list(registry),
            CTX,
            Deadline(10),
        )
        outside = await run(
            Query(**{**query.__dict__, "scope": Scope(prefix="3702")}),
            list(registry),
            CTX,
            Deadline(10),
        )
        assert inside.cells[("MONTH",)][("2020-03",)].count == 1
        assert outside.cells[("MONTH",)] == {}
    finally:
        await registry.dispose()
