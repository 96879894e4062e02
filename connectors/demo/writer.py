"""Batch writes into the source databases with SQLAlchemy Core ``executemany``.

One engine per source; each batch is one transaction per source, so a reader (or a crash)
never sees half a person in one source.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable

from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.demo.encode import Rows
from connectors.sources import SourceSpec
from connectors.sql.engine import create_source_engine
from connectors.sql.models import METADATA_BY_KIND


@functools.cache
def _sqlite_insert(table: Table) -> str:
    """INSERT with every column in table order and qmark parameters, as SQLAlchemy compiles
    it for SQLite (the order ``encode`` builds its tuples in)."""
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    marks = ", ".join("?" for _ in table.columns)
    return f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})'  # noqa: S608


class SourceWriter:
    def __init__(self, specs: Iterable[SourceSpec]) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self._engines: dict[str, AsyncEngine] = {
            name: create_source_engine(spec) for name, spec in self.specs.items()
        }

    def _tables(self, source: str):
        return METADATA_BY_KIND[self.specs[source].kind].sorted_tables  # parents first

    async def write(self, rows: Rows) -> None:
        await asyncio.gather(*(self._write_one(source, tables) for source, tables in rows.items()))

    async def _write_one(self, source: str, tables: dict[str, list]) -> None:
        async with self._engines[source].begin() as conn:
            for table in self._tables(source):
                batch = tables.get(table.name)
                if not batch:
                    continue
                if isinstance(batch[0], tuple):  # SQLite rows, already in storage form
                    await conn.exec_driver_sql(_sqlite_insert(table), batch)
                else:
                    await conn.execute(table.insert(), batch)

    async def sources_with_rows(self) -> list[str]:
        """Configured sources (SQLite or PostgreSQL) that hold any row in their tables."""
        found = []
        for source, engine in self._engines.items():
            async with engine.connect() as conn:
                for table in self._tables(source):
                    if await conn.scalar(
                        select(func.count()).select_from(select(table).limit(1).subquery())
                    ):
                        found.append(source)
                        break
        return found

    async def empty(self) -> None:
        """Delete every row of every source table (children first), keeping the schema."""
        for source, engine in self._engines.items():
            async with engine.begin() as conn:
                for table in reversed(self._tables(source)):
                    await conn.execute(delete(table))

    async def count(self, source: str, table: str) -> int:
        target = METADATA_BY_KIND[self.specs[source].kind].tables[table]
        async with self._engines[source].connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(target)) or 0)

    async def close(self) -> None:
        await asyncio.gather(*(engine.dispose() for engine in self._engines.values()))
