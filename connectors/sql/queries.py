"""Parameterised reads against one source database, returning plain row dicts.

Each function issues exactly one SQL statement, whatever the number of keys, so loaders that
batch keys keep the statement count bounded by sources × nesting levels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

Row = dict[str, Any]

# One statement object per (table, column, order): building and coercing a fresh select for
# every loader call cost about a fifth of a cloud-record request; the keys are an expanding
# bind parameter, so the SQL text and SQLAlchemy's compiled-statement cache entry are the same.
_IN_STATEMENTS: dict[tuple[Table, str, tuple[str, ...]], Select] = {}


def _in_statement(table: Table, column: str, order_by: tuple[str, ...]) -> Select:
    stmt = _IN_STATEMENTS.get((table, column, order_by))
    if stmt is None:
        stmt = select(table).where(table.c[column].in_(bindparam("keys", expanding=True)))
        if order_by:
            stmt = stmt.order_by(*(table.c[c] for c in order_by))
        _IN_STATEMENTS[(table, column, order_by)] = stmt
    return stmt


def _dicts(result: Any) -> list[Row]:
    names = tuple(result.keys())
    return [dict(zip(names, r, strict=True)) for r in result.all()]


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
    stmt = _in_statement(table, column, tuple(order_by))
    async with engine.connect() as conn:
        return _dicts(await conn.execute(stmt, {"keys": keys}))


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
