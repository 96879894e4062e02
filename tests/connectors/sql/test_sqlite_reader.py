"""The SQLite reader (one thread hand-off per keyed read) answers exactly what the async
engine answers, refuses to write, and fails like a source that is not there."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from connectors.registry import SourceRegistry, open_source
from connectors.sources import SourceSpec
from connectors.sql import migrate
from connectors.sql.models import bureau
from connectors.sql.queries import fetch_in
from connectors.sql.sqlite_reader import SqliteReader

VISITS = bureau.Visit.__table__


def _visit(i: int, person: str, *, end: date | None, cross: bool, text: bytes | None) -> dict:
    return {
        "mdtrt_id": f"V{i:05d}",
        "person_ref": person,
        "institution_code": "H33010600001",
        "visit_type": "OUTPATIENT",
        "begin_date": date(2024, 3, i % 28 + 1),
        "end_date": end,
        "diagnosis_codes": "J06.9,R50.9",
        "diagnosis_text_enc": text,
        "doctor_code": "D001",
        "insuplc_admdvs": "330106",
        "mdtrtarea_admvs": "330106",
        "cross_region": cross,
    }


@pytest.fixture
async def bureau_source(tmp_path: Path):
    spec = SourceSpec(
        name="bureau-t", kind="bureau", url=f"sqlite+aiosqlite:///{tmp_path.as_posix()}/bureau.db"
    )
    await migrate.upgrade(spec)
    source = open_source(spec)
    rows = [
        _visit(
            i,
            "A" if i % 2 else "B",
            end=None if i % 3 else date(2024, 4, 1),
            cross=bool(i % 2),
            text=None if i % 4 else bytes([i, 0, 255]),
        )
        for i in range(1, 41)
    ]
    async with source.engine.begin() as conn:
        await conn.execute(insert(VISITS), rows)
    yield source
    source.reader.close()
    await source.engine.dispose()


async def test_reader_rows_equal_the_engine_rows_value_for_value(bureau_source):
    assert bureau_source.reader is not None, "a SQLite file source reads through its reader"
    through_reader = await bureau_source.fetch_in(
        VISITS, "person_ref", ["A", "B", "A"], order_by=("mdtrt_id",)
    )
    through_engine = await fetch_in(
        bureau_source.engine, VISITS, "person_ref", ["A", "B"], order_by=("mdtrt_id",)
    )
    assert len(through_reader) == 40
    assert through_reader == through_engine
    first = through_reader[0]
    # Dates, booleans and bytes come back as Python values, not SQLite's storage forms.
    assert isinstance(first["begin_date"], date) and not isinstance(first["begin_date"], datetime)
    assert isinstance(first["cross_region"], bool)
    assert {type(r["diagnosis_text_enc"]) for r in through_reader} == {bytes, type(None)}
    assert bureau_source.reader.statements == 1


async def test_reader_sees_rows_committed_after_it_opened(bureau_source):
    assert await bureau_source.fetch_in(VISITS, "person_ref", ["C"]) == []
    async with bureau_source.engine.begin() as conn:
        await conn.execute(insert(VISITS), [_visit(99, "C", end=None, cross=False, text=None)])
    rows = await bureau_source.fetch_in(VISITS, "person_ref", ["C"])
    assert [r["mdtrt_id"] for r in rows] == ["V00099"]


async def test_reader_connections_cannot_write(bureau_source):
    reader = bureau_source.reader
    await reader.fetch_in(VISITS, "person_ref", ["A"])  # opens the thread's connection
    loop = asyncio.get_running_loop()
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        await loop.run_in_executor(
            reader._executor, lambda: reader._connection().execute("DELETE FROM visits")
        )


async def test_a_missing_database_file_is_an_error_not_a_new_file(tmp_path: Path):
    from sqlalchemy.dialects.sqlite.aiosqlite import dialect

    path = tmp_path / "gone.db"
    reader = SqliteReader(path, dialect())
    try:
        with pytest.raises(sqlite3.OperationalError):
            await reader.fetch_in(VISITS, "person_ref", ["A"])
    finally:
        reader.close()
    assert not path.exists()


async def test_in_memory_sources_keep_the_engine_path():
    spec = SourceSpec(name="mem", kind="bureau", url="sqlite+aiosqlite:///:memory:")
    registry = SourceRegistry([spec])
    try:
        assert registry.get("mem").reader is None
    finally:
        await registry.dispose()


async def test_a_closed_reader_refuses_reads(bureau_source):
    bureau_source.reader.close()
    with pytest.raises(sqlite3.ProgrammingError):
        await bureau_source.fetch_in(VISITS, "person_ref", ["A"])


async def test_a_read_over_the_inline_budget_is_finished_by_a_reader_thread(
    bureau_source, monkeypatch
):
    import threading

    rows = [_visit(1000 + i, f"P{i % 300}", end=None, cross=False, text=None) for i in range(3000)]
    async with bureau_source.engine.begin() as conn:
        await conn.execute(insert(VISITS), rows)
    reader = bureau_source.reader
    expected = await fetch_in(
        bureau_source.engine, VISITS, "person_ref", [f"P{i}" for i in range(300)]
    )
    threads: list[str] = []
    original = SqliteReader._run

    def spy(self, *args):
        threads.append(threading.current_thread().name)
        return original(self, *args)

    monkeypatch.setattr(SqliteReader, "_run", spy)
    reader.inline_budget = 1e-9  # every inline attempt is over budget at its first check
    got = await bureau_source.fetch_in(VISITS, "person_ref", [f"P{i}" for i in range(300)])
    assert sorted(got, key=lambda r: r["mdtrt_id"]) == sorted(expected, key=lambda r: r["mdtrt_id"])
    assert len(got) == 3000
    assert threads and threads[0].startswith("read-")  # finished off the event loop
    reader.inline_budget = 0.01
    threads.clear()
    await bureau_source.fetch_in(VISITS, "person_ref", ["P1"])
    assert threads == []  # a quick keyed read stays inline
