"""Parameterised reads against one source database, returning plain row dicts.

Each function issues exactly one SQL statement, whatever the number of keys, so loaders that
batch keys keep the statement count bounded by sources × nesting levels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

Row = dict[str, Any]


async def fetch_in(
    engine: AsyncEngine,
    table: Table,
    column: str,
    keys: Iterable[Any],
    *,
    order_by: Sequence[str] = (),
) -> list[Row]:
    """Rows of ``table`` whose ``column`` is one of ``keys``."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    stmt = select(table).where(table.c[column].in_(keys))
    if order_by:
        stmt = stmt.order_by(*(table.c[c] for c in order_by))
    async with engine.connect() as conn:
        result = await conn.execute(stmt)
        return [dict(r._mapping) for r in result]


async def fetch_page(
    engine: AsyncEngine,
    table: Table,
    *,
    where: Sequence[ColumnElement[bool]],
    order: Sequence[str],
    descending: bool,
    after: Sequence[Any] | None,
    limit: int,
) -> list[Row]:
    """One keyset page: rows strictly after ``after`` in the (``order``) sort, at most
    ``limit``. Keyset (not offset) paging stays correct when rows are added meanwhile and
    lets pages from several sources be merged by the same key."""
    columns = [table.c[c] for c in order]
    conditions = list(where)
    if after is not None:
        key = tuple_(*columns)
        conditions.append(key < tuple_(*after) if descending else key > tuple_(*after))
    stmt = select(table).where(*conditions).limit(limit)
    stmt = stmt.order_by(*(c.desc() if descending else c.asc() for c in columns))
    async with engine.connect() as conn:
        result = await conn.execute(stmt)
        return [dict(r._mapping) for r in result]
