"""Keyset pages in SQL (``Source.fetch_top``) cut exactly what the same cut over every row
cuts (``top_rows``), on SQLite and PostgreSQL, for one key and for several, with and without
a cursor, and on a source without a reader (the engine path)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import insert

from connectors.registry import Source, SourceRegistry
from connectors.sql import migrate
from connectors.sql.models import bureau
from connectors.sql.queries import fetch_in
from connectors.sql.top import top_rows

VISITS = bureau.Visit.__table__
ORDER = ("begin_date", "mdtrt_id")


def _visit(i: int, person: str) -> dict:
    return {
        "mdtrt_id": f"V{i:05d}",
        "person_ref": person,
        "institution_code": "H33010600001",
        "visit_type": "OUTPATIENT",
        "begin_date": date(2024, 1 + i % 12, 1 + i % 5),  # ties on the date: the id decides
        "end_date": None,
        "diagnosis_codes": "I10",
        "diagnosis_text_enc": None,
        "doctor_code": "D001",
        "insuplc_admdvs": "330106",
        "mdtrtarea_admvs": "330106",
        "cross_region": False,
    }


@pytest.fixture
async def source(make_spec):
    spec = make_spec("bureau", "bureau-t")
    await migrate.upgrade(spec)
    registry = SourceRegistry([spec])
    found = registry.get(spec.name)
    async with found.engine.begin() as conn:
        await conn.execute(insert(VISITS), [_visit(i, "ABC"[i % 3]) for i in range(60)])
    yield found
    await registry.dispose()


CASES = [
    (["A"], None, 5),
    (["A"], (date(2024, 6, 1), "V00000"), 4),
    (["A", "B", "C"], None, 3),
    (["B", "C", "Z"], (date(2024, 9, 3), "V00050"), 6),
    (["A", "B"], None, 100),
]


@pytest.mark.parametrize(("keys", "after", "limit"), CASES)
async def test_a_page_in_sql_is_the_page_cut_from_every_row(source: Source, keys, after, limit):
    every = await fetch_in(source.engine, VISITS, "person_ref", keys)
    expected = top_rows(every, "person_ref", ORDER, after, limit)
    assert source.reader is not None
    got = await source.fetch_top(VISITS, "person_ref", keys, ORDER, after, limit)
    key = lambda r: (r["person_ref"], r["begin_date"], r["mdtrt_id"])  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)
    assert expected, "each case finds rows (a page of nothing would prove little)"
    for ref in keys:
        mine = [r for r in expected if r["person_ref"] == ref]
        assert len(mine) == min(
            limit,
            len(
                [
                    r
                    for r in every
                    if r["person_ref"] == ref
                    and (after is None or (r["begin_date"], r["mdtrt_id"]) < after)
                ]
            ),
        )
    # The engine path (a source without a reader) cuts the same page.
    reader, source.reader = source.reader, None
    try:
        again = await source.fetch_top(VISITS, "person_ref", keys, ORDER, after, limit)
    finally:
        source.reader = reader
    assert sorted(again, key=key) == sorted(expected, key=key)


async def test_one_statement_per_page_whatever_the_keys(source: Source):
    counter = source.reader.statements
    await source.fetch_top(VISITS, "person_ref", ["A", "B", "C"], ORDER, None, 2)
    await source.fetch_top(VISITS, "person_ref", ["A"], ORDER, None, 2)
    assert source.reader.statements == counter + 2
    assert await source.fetch_top(VISITS, "person_ref", [], ORDER, None, 2) == []
    assert source.reader.statements == counter + 2
