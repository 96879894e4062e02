"""The PostgreSQL reader (asyncpg on held connections, one prepared statement per shape)
answers exactly what the async engine answers, keeps each source to its own schema, refuses
to write, and is counted like any other statement."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg
import pytest
from sqlalchemy import insert

from connectors.registry import SourceRegistry
from connectors.sql import migrate
from connectors.sql.models import bureau, hospital
from connectors.sql.pg_reader import PgReader
from connectors.sql.queries import fetch_in

VISITS = bureau.Visit.__table__
RESULTS = hospital.TestResult.__table__

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgres"])]


def _visit(i: int, person: str, *, cross: bool, text: bytes | None) -> dict:
    return {
        "mdtrt_id": f"V{i:05d}",
        "person_ref": person,
        "institution_code": "H33010600001",
        "visit_type": "OUTPATIENT",
        "begin_date": date(2024, 3, i % 28 + 1),
        "end_date": None if i % 3 else date(2024, 4, 1),
        "diagnosis_codes": "J06.9,R50.9",
        "diagnosis_text_enc": text,
        "doctor_code": "D001",
        "insuplc_admdvs": "330106",
        "mdtrtarea_admvs": "330106",
        "cross_region": cross,
    }


def _result(i: int, person: str) -> dict:
    return {
        "result_id": f"R{i:05d}",
        "person_ref": person,
        "patient_no": f"N{i}",
        "institution_code": "H33010600001",
        "mdtrt_id": None,
        "category": "LAB",
        "item_code": "2345-7",
        "item_name": "Glucose",
        "value": 5.5 + i / 10,
        "unit": "mmol/L",
        "ref_low": 3.9,
        "ref_high": 6.1,
        "flag": "N",
        "modality": None,
        "body_part": None,
        "findings_enc": None,
        "impression_enc": None,
        "study_uid": None,
        "ordering_doctor": "D001",
        "collected_at": datetime(2024, 3, 1, 8, i % 60),
        "reported_at": datetime(2024, 3, 1, 12, 0),
    }


@pytest.fixture
async def registry(make_spec):
    """Two bureaus and a hospital, each its own schema of one PostgreSQL database."""
    specs = [
        make_spec("bureau", "bureau-a"),
        make_spec("bureau", "bureau-b"),
        make_spec("hospital", "hospital-h"),
    ]
    for spec in specs:
        await migrate.upgrade(spec)
    registry = SourceRegistry(specs)
    a, b, h = (registry.get(s.name) for s in specs)
    async with a.engine.begin() as conn:
        rows = [
            _visit(i, "A" if i % 2 else "B", cross=bool(i % 2), text=bytes([i, 0]))
            for i in range(1, 41)
        ]
        await conn.execute(insert(VISITS), rows)
    async with b.engine.begin() as conn:
        await conn.execute(insert(VISITS), [_visit(500, "A", cross=False, text=None)])
    async with h.engine.begin() as conn:
        await conn.execute(insert(RESULTS), [_result(i, "A") for i in range(5)])
    yield registry
    await registry.dispose()


async def test_reader_rows_equal_the_engine_rows_value_for_value(registry):
    source = registry.get("bureau-a")
    assert isinstance(source.reader, PgReader), "a PostgreSQL source reads through its reader"
    through_reader = await source.fetch_in(
        VISITS, "person_ref", ["A", "B", "A"], order_by=("mdtrt_id",)
    )
    through_engine = await fetch_in(
        source.engine, VISITS, "person_ref", ["A", "B"], order_by=("mdtrt_id",)
    )
    assert len(through_reader) == 40
    assert through_reader == through_engine
    assert isinstance(through_reader[0]["begin_date"], date)
    assert {type(r["cross_region"]) for r in through_reader} == {bool}
    assert {type(r["diagnosis_text_enc"]) for r in through_reader} == {bytes}
    hospital_source = registry.get("hospital-h")
    results = await hospital_source.fetch_in(RESULTS, "person_ref", ["A"], ("result_id",))
    assert results == await fetch_in(
        hospital_source.engine, RESULTS, "person_ref", ["A"], order_by=("result_id",)
    )
    assert isinstance(results[0]["value"], float) and isinstance(
        results[0]["collected_at"], datetime
    )


async def test_each_source_reads_its_own_schema_through_the_shared_pool(registry):
    a, b = registry.get("bureau-a"), registry.get("bureau-b")
    assert a.reader.pool is b.reader.pool  # one database, one pool
    assert [r["mdtrt_id"] for r in await b.fetch_in(VISITS, "person_ref", ["A"])] == ["V00500"]
    assert len(await a.fetch_in(VISITS, "person_ref", ["A"])) == 20
    assert await b.fetch_in(VISITS, "person_ref", ["B"]) == []


async def test_one_statement_text_whatever_the_number_of_keys(registry):
    source = registry.get("bureau-a")
    counter = registry.statement_counter()
    for keys in (["A"], ["A", "B"], [f"K{i}" for i in range(50)]):
        await source.fetch_in(VISITS, "person_ref", keys)
    assert counter.count == 3
    assert len(source.reader._plans) == 1  # so asyncpg prepares it once per connection


async def test_reader_connections_cannot_write(registry):
    source = registry.get("bureau-a")
    await source.fetch_in(VISITS, "person_ref", ["A"])
    pool = await source.reader.pool.get()
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await pool.execute(f'DELETE FROM "{source.spec.schema}".visits')
    assert len(await source.fetch_in(VISITS, "person_ref", ["A"])) == 20


async def test_a_reset_reader_reads_again_on_fresh_connections(registry):
    source = registry.get("bureau-a")
    await source.fetch_in(VISITS, "person_ref", ["A"])
    await source.reader.reset()
    assert len(await source.fetch_in(VISITS, "person_ref", ["B"])) == 20
