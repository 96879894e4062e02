"""Keyed reads of one SQLite source: inline under a time budget, else on a reader thread.

Through SQLAlchemy's async engine and aiosqlite, one ``SELECT … WHERE k IN (…)`` crosses to
the driver's thread and back five or six times (checkout, execute, fetch, cursor close,
reset on return), and each crossing waits for the GIL the event loop holds. A cloud record
reads some twenty such statements: the crossings cost five times the reads themselves
(measured: about 10 ms of thread hand-offs around 2 ms of SQLite work per request).

So a keyed read of a local SQLite file runs on the event loop's thread, where an indexed
lookup takes a tenth of a millisecond, under a budget that SQLite's progress handler
enforces: a statement still running when the budget is spent is aborted and run again on
a reader thread, so a slow read never holds the loop longer than the budget, and the
request's deadline still applies to it. A locked database is never waited for inline
either (no busy timeout there); it goes to the thread, which waits. SQL text is built once
per shape from the table metadata, and values are converted by the same SQLAlchemy type
processors the engine uses.

Reader connections are ``query_only``: writes keep going through the engine (and its
migrations, transactions and events); readers see what was committed, as any pooled
connection in WAL mode does.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

from connectors import observe
from connectors.sql.top import top_sql

Row = dict[str, Any]
# Inline reads give up (and go to a thread) after this long: an indexed lookup takes about
# a tenth of a millisecond, so only a read that would block the loop is sent away.
INLINE_BUDGET = 0.01
PROGRESS_STEPS = 1000  # SQLite VM instructions between budget checks
Processor = Callable[[Any], Any] | None


def convert_rows(
    names: tuple[str, ...], processors: tuple[Processor, ...], rows: Sequence[Sequence[Any]]
) -> list[Row]:
    """Driver rows as dicts, each value through its column's result processor, if any."""
    if not any(processors):
        return [dict(zip(names, r, strict=True)) for r in rows]
    return [
        {
            n: (v if p is None or v is None else p(v))
            for n, p, v in zip(names, processors, r, strict=True)
        }
        for r in rows
    ]


class _NotInline(Exception):
    """The read did not finish inline: run it on a reader thread."""


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]
    processors: tuple[Processor, ...]  # per column; None where the driver value is final
    bind: Processor
    order_binds: tuple[Processor, ...] = ()  # a keyset page's cursor columns


class SqliteReader:
    """Read-only statements against the SQLite file at ``path``.

    ``threads`` connections at most, one per reader thread, opened on first use; SQLite
    releases the GIL while it steps, so concurrent requests read in parallel.
    """

    def __init__(
        self,
        path: Path,
        dialect: Dialect,
        *,
        name: str = "sqlite",
        threads: int = 2,
        # A reader waits this long for a lock (in WAL mode only an exclusive lock, which no
        # medfed writer takes, blocks readers); then the source is reported LOCKED.
        busy_timeout_ms: int = 1000,
        inline_budget: float = INLINE_BUDGET,
    ) -> None:
        self.path = path
        self.dialect = dialect
        self.busy_timeout_ms = busy_timeout_ms
        self.inline_budget = inline_budget  # seconds; 0 sends every read to a thread
        self._inline: sqlite3.Connection | None = None
        self._inline_until = 0.0
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"read-{name}")
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._plans: dict[tuple, _Plan] = {}
        self._closed = False
        self._generation = 0  # bumped by reset(): connections of older generations are closed
        # Statements run, for statement-count tests and benchmarks (the engine's
        # ``before_cursor_execute`` event does not see these).
        self.statements = 0

    # -- the statement ---------------------------------------------------------------------
    async def fetch_in(
        self, table: Table, column: str, keys: Sequence[Any], order_by: Sequence[str] = ()
    ) -> list[Row]:
        """Rows of ``table`` whose ``column`` is one of ``keys`` (already de-duplicated)."""
        if self._closed:
            raise sqlite3.ProgrammingError("the reader is closed")
        plan = self._plan(table, column, tuple(order_by), len(keys))
        params = list(keys) if plan.bind is None else [plan.bind(k) for k in keys]
        return await self._execute(plan, params)

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
        if self._closed:
            raise sqlite3.ProgrammingError("the reader is closed")
        shape = (table, column, ("top", *order), len(keys), after is not None)
        plan = self._plans.get(shape)
        if plan is None:
            plan = self._plans[shape] = self._build_top(
                table, column, tuple(order), len(keys), after is not None
            )
        params = list(keys) if plan.bind is None else [plan.bind(k) for k in keys]
        if after is not None:
            params += [
                v if b is None else b(v) for b, v in zip(plan.order_binds, after, strict=True)
            ]
        return await self._execute(plan, [*params, limit])

    async def _execute(self, plan: _Plan, params: list[Any]) -> list[Row]:
        self.statements += 1
        observe.statement()
        if self.inline_budget > 0:
            try:
                return self._run_inline(plan, params)
            except _NotInline:
                pass
        running: list[sqlite3.Connection] = []
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, self._run, plan, params, running
        )
        try:
            return await future
        except asyncio.CancelledError:
            # The deadline passed: stop the statement rather than let it finish for nobody.
            for conn in running:
                conn.interrupt()
            raise

    def _run_inline(self, plan: _Plan, params: list[Any]) -> list[Row]:
        conn = self._inline
        if conn is None:
            conn = self._inline = self._open(busy_timeout_ms=0)
            conn.set_progress_handler(self._over_budget, PROGRESS_STEPS)
        self._inline_until = time.perf_counter() + self.inline_budget
        try:
            rows = conn.execute(plan.sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            # Interrupted by the budget, or busy/locked: the thread will do it (and wait).
            if self._inline_until == 0.0 or "locked" in str(exc) or "busy" in str(exc):
                raise _NotInline from None
            raise
        finally:
            self._inline_until = float("inf")
        return self._convert(plan, rows)

    def _over_budget(self) -> int:
        if time.perf_counter() > self._inline_until:
            self._inline_until = 0.0  # tells _run_inline the abort was ours
            return 1
        return 0

    def _run(self, plan: _Plan, params: list[Any], running: list[sqlite3.Connection]) -> list[Row]:
        conn = self._connection()
        running.append(conn)
        return self._convert(plan, conn.execute(plan.sql, params).fetchall())

    @staticmethod
    def _convert(plan: _Plan, rows: list[tuple]) -> list[Row]:
        return convert_rows(plan.names, plan.processors, rows)

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "generation", None) != self._generation:
            conn = self._local.conn = self._open(busy_timeout_ms=self.busy_timeout_ms)
            self._local.generation = self._generation
        return conn

    def _open(self, *, busy_timeout_ms: int) -> sqlite3.Connection:
        # mode=rw: a missing file is an error (the source is unavailable), not a new empty
        # database. check_same_thread=False only so that close() and interrupt() may come
        # from another thread; each connection runs statements on one thread alone.
        conn = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode=rw", uri=True, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        conn.execute("PRAGMA query_only=ON")
        with self._lock:
            self._opened.append(conn)
        return conn

    # -- SQL text and converters, once per shape ----------------------------------------------
    def _plan(self, table: Table, column: str, order_by: tuple[str, ...], n: int) -> _Plan:
        key = (table, column, order_by, n)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._build_plan(table, column, order_by, n)
        return plan

    def _build_plan(self, table: Table, column: str, order_by: tuple[str, ...], n: int) -> _Plan:
        quote = self.dialect.identifier_preparer.quote
        cols = list(table.columns)
        names = tuple(c.name for c in cols)
        where = table.c[column]  # KeyError for a column the table lacks
        sql = (
            f"SELECT {', '.join(quote(c) for c in names)} FROM {quote(table.name)} "  # noqa: S608
            f"WHERE {quote(where.name)} IN ({', '.join('?' * n)})"
        )
        if order_by:
            sql += " ORDER BY " + ", ".join(quote(table.c[c].name) for c in order_by)
        processors = tuple(
            c.type.dialect_impl(self.dialect).result_processor(self.dialect, None) for c in cols
        )
        bind = where.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return _Plan(sql, names, processors, bind)

    def _build_top(
        self, table: Table, column: str, order: tuple[str, ...], n: int, after: bool
    ) -> _Plan:
        quote = self.dialect.identifier_preparer.quote
        sql = top_sql(
            table,
            column,
            order,
            single=n == 1,
            keys=f"IN ({', '.join('?' * n)})",
            after=["?"] * len(order) if after else None,
            limit="?",
            quote=quote,
            table_name=quote(table.name),
        )
        base = self._build_plan(table, column, (), n)
        binds = tuple(self._bind(table.c[c]) for c in order)
        return _Plan(sql, base.names, base.processors, base.bind, binds)

    def _bind(self, column: Any) -> Processor:
        return column.type.dialect_impl(self.dialect).bind_processor(self.dialect)

    # -- lifecycle ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Close every connection; the next read opens the file now at the path (the health
        guard calls this before probing a source whose file changed or went away)."""
        self._generation += 1
        self._inline = None
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            with contextlib.suppress(sqlite3.Error):
                conn.interrupt()
                conn.close()

    def close(self) -> None:
        self._closed = True
        self._inline = None
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
