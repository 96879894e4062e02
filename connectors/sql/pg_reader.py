"""Keyed reads of PostgreSQL sources straight through asyncpg, on held connections.

Through SQLAlchemy's async engine one ``SELECT … WHERE k IN (…)`` costs four round trips
and a greenlet switch per step: the pool checkout's ping (``pool_pre_ping``), ``BEGIN`` (the
asyncpg adapter opens a transaction for every connection use), the statement, and
``ROLLBACK`` on return; with an expanding ``IN`` the SQL text, and so the server's prepared
statement, also changes with the number of keys. Profiled on the 10,000-person demo that was
most of the 17-35 ms of gateway CPU per cloud record (19 statements).

So a keyed read of a PostgreSQL source is one statement on a connection already open: SQL
text built once per shape from the table metadata, with the keys as one array parameter
(``= ANY($1)``), so asyncpg's per-connection statement cache prepares it once; autocommit
(a lone ``SELECT`` needs no transaction); values converted by the same SQLAlchemy type
processors the engine uses. Sources that share one database (a schema per source, as
``MEDFED_DATABASE_URL`` sets them up) share one small pool, each statement naming its schema.

Reader connections are read-only (``default_transaction_read_only``), and nothing on them
changes session state, so a connection goes back to the pool without asyncpg's reset query:
writes keep going through the engine (its migrations, transactions and events).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect, make_url

from connectors import observe
from connectors.sql.sqlite_reader import Processor, Row, convert_rows
from connectors.sql.top import top_sql

POOL_MIN = 1
# Connections per database and process: a cloud record asks a dozen sources at once, and a
# worker's loop is one core; more would only queue in the server.
POOL_MAX = 8


async def _keep_state(_conn: Any) -> None:
    """In place of asyncpg's reset on release: reader connections change no state."""


class PgPool:
    """One asyncpg pool for one database URL, opened on first use in the running loop
    (a pool belongs to the loop it was made in; a new loop gets a new pool)."""

    def __init__(self, url: str, *, min_size: int = POOL_MIN, max_size: int = POOL_MAX) -> None:
        parsed = make_url(url)
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._min, self._max = min_size, max_size
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None

    async def get(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        if self._opening is None or self._loop is not loop:
            self._opening, self._loop, self._pool = asyncio.Lock(), loop, None
        async with self._opening:
            if self._pool is None:
                import asyncpg

                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=self._min,
                    max_size=self._max,
                    reset=_keep_state,
                    server_settings={"default_transaction_read_only": "on"},
                )
        return self._pool

    async def expire(self) -> None:
        """Replace every connection on its next use (the health guard's reset)."""
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._pool.expire_connections()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and self._loop is asyncio.get_running_loop():
            await pool.close()
        elif pool is not None:
            pool.terminate()


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]
    processors: tuple[Processor, ...]
    bind: Processor
    order_binds: tuple[Processor, ...] = ()


class PgReader:
    """Read-only keyed statements against one source: ``schema`` of ``pool``'s database."""

    def __init__(self, pool: PgPool, dialect: Dialect, schema: str | None) -> None:
        self.pool = pool
        self.dialect = dialect
        self.schema = schema
        self._plans: dict[tuple, _Plan] = {}
        self.statements = 0  # for statement-count tests and benchmarks, as SqliteReader

    async def fetch_in(
        self, table: Table, column: str, keys: Sequence[Any], order_by: Sequence[str] = ()
    ) -> list[Row]:
        """Rows of ``table`` whose ``column`` is one of ``keys`` (already de-duplicated)."""
        plan = self._plan(table, column, tuple(order_by))
        params = list(keys) if plan.bind is None else [plan.bind(k) for k in keys]
        pool = await self.pool.get()
        self.statements += 1
        observe.statement()
        records = await pool.fetch(plan.sql, params)
        return convert_rows(plan.names, plan.processors, records)

    async def fetch_top(
        self,
        table: Table,
        column: str,
        keys: Sequence[Any],
        order: Sequence[str],
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[Row]:
        """Each key's newest ``limit`` rows in the ``order`` sort, strictly before ``after``
        (a keyset page, ``connectors.sql.top``); keys already de-duplicated."""
        shape = (table, column, ("top", *order), len(keys) == 1, after is not None)
        plan = self._plans.get(shape)
        if plan is None:
            plan = self._plans[shape] = self._build_top(
                table, column, tuple(order), len(keys) == 1, after is not None
            )
        bound = list(keys) if plan.bind is None else [plan.bind(k) for k in keys]
        # One key is compared as a scalar: the planner can then read the page off the
        # (key, sort) index in order, which it cannot for an array of unknown length.
        params: list[Any] = [bound[0] if len(bound) == 1 else bound]
        if after is not None:
            params += [
                v if b is None else b(v) for b, v in zip(plan.order_binds, after, strict=True)
            ]
        pool = await self.pool.get()
        self.statements += 1
        observe.statement()
        records = await pool.fetch(plan.sql, *params, limit)
        return convert_rows(plan.names, plan.processors, records)

    async def reset(self) -> None:
        await self.pool.expire()

    def _build_top(
        self, table: Table, column: str, order: tuple[str, ...], single: bool, after: bool
    ) -> _Plan:
        quote = self.dialect.identifier_preparer.quote
        marks = [f"${i}" for i in range(2, len(order) + 2)]
        sql = top_sql(
            table,
            column,
            order,
            single=single,
            keys="= $1" if single else "= ANY($1)",
            after=marks if after else None,
            limit=f"${len(order) + 2 if after else 2}",
            quote=quote,
            table_name=self._name(table),
        )
        base = self._build_plan(table, column, ())
        binds = tuple(
            table.c[c].type.dialect_impl(self.dialect).bind_processor(self.dialect) for c in order
        )
        return _Plan(sql, base.names, base.processors, base.bind, binds)

    def _name(self, table: Table) -> str:
        quote = self.dialect.identifier_preparer.quote
        name = quote(table.name)
        return f"{quote(self.schema)}.{name}" if self.schema else name

    def _plan(self, table: Table, column: str, order_by: tuple[str, ...]) -> _Plan:
        key = (table, column, order_by)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._build_plan(table, column, order_by)
        return plan

    def _build_plan(self, table: Table, column: str, order_by: tuple[str, ...]) -> _Plan:
        quote = self.dialect.identifier_preparer.quote
        cols = list(table.columns)
        names = tuple(c.name for c in cols)
        where = table.c[column]  # KeyError for a column the table lacks
        name = self._name(table)
        sql = (
            f"SELECT {', '.join(quote(c) for c in names)} FROM {name} "  # noqa: S608
            f"WHERE {quote(where.name)} = ANY($1)"
        )
        if order_by:
            sql += " ORDER BY " + ", ".join(quote(table.c[c].name) for c in order_by)
        processors = tuple(self._processor(c.type) for c in cols)
        bind = where.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return _Plan(sql, names, processors, bind)

    def _processor(self, type_: Any) -> Processor:
        impl = type_.dialect_impl(self.dialect)
        try:
            return impl.result_processor(self.dialect, None)
        except TypeError:
            # Numeric types pick their processor by the column's type OID, which only a
            # result knows; asyncpg already answers float8 as float (the models' Float).
            return None
