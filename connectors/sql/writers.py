"""Writes to source databases: each call is one transaction at one source.

Rows arrive complete (encrypted columns already sealed, primary keys already chosen); these
functions only store them. Every insert is insert-if-absent on the primary key, because the
API derives keys from idempotency keys: a retried or racing write lands on the row the first
one stored instead of failing or adding a second.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.sql.models import bureau, hospital, platform
from security.store import insert_if_absent

Row = dict[str, Any]


async def insert_all_if_absent(engine: AsyncEngine, *rows: tuple[Table, Row]) -> list[bool]:
    """Insert each (table, row) unless its primary key exists, all in one transaction, in
    order (so a parent row precedes the rows that refer to it). True where inserted."""
    async with engine.begin() as conn:
        return [await insert_if_absent(conn, table, row) for table, row in rows]


async def read_row(engine: AsyncEngine, table: Table, column: str, value: Any) -> Row | None:
    """The row of ``table`` whose (unique) ``column`` equals ``value``."""
    async with engine.connect() as conn:
        found = (await conn.execute(select(table).where(table.c[column] == value))).first()
    return None if found is None else dict(found._mapping)


async def write_test_result(
    engine: AsyncEngine, result: Row, new_patient: Row | None = None
) -> None:
    """A lab or imaging result at a hospital, with the patient-index row it needs when the
    hospital did not know the person yet."""
    rows: list[tuple[Table, Row]] = []
    if new_patient is not None:
        rows.append((hospital.Patient.__table__, new_patient))
    rows.append((hospital.TestResult.__table__, result))
    await insert_all_if_absent(engine, *rows)


async def write_settlement(engine: AsyncEngine, row: Row) -> None:
    """An in-province settlement at the bureau of the treatment province."""
    await insert_all_if_absent(engine, (bureau.Settlement.__table__, row))


async def write_cross_settlement(engine: AsyncEngine, row: Row) -> None:
    """A cross-province settlement at the national platform, pending monthly clearing."""
    await insert_all_if_absent(engine, (platform.CrossSettlement.__table__, row))


async def write_filing(engine: AsyncEngine, row: Row) -> None:
    """A filing (备案) at the national platform."""
    await insert_all_if_absent(engine, (platform.Filing.__table__, row))
