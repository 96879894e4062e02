"""Keyed reads of one SQLite source on threads of its own: one hand-off per statement.

Through SQLAlchemy's async engine and aiosqlite, one ``SELECT … WHERE k IN (…)`` crosses to
the driver's thread and back five or six times (checkout, execute, fetch, cursor close,
reset on return), and each crossing contends for the GIL with the event loop. A cloud
record reads some twenty such statements, and those crossings were the largest part of
its latency. Here the whole statement (execute, fetch, convert) runs as one function on a
reader thread, with SQL text built once per shape from the same table metadata and the
values converted by the same SQLAlchemy type processors as the engine would use.

Reader connections are ``query_only``: writes keep going through the engine (and its
migrations, transactions and events); readers see what was committed, as any pooled
connection in WAL mode does.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

Row = dict[str, Any]
Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]
    processors: tuple[Processor, ...]  # per column; None where the driver value is final
    bind: Processor


class SqliteReader:
    """Read-only statements against the SQLite file at ``path``.

    ``threads`` connections at most, one per reader thread, opened on first use; SQLite
    releases the GIL while it steps, so concurrent requests read in parallel.
    """

    def __init__(self, path: Path, dialect: Dialect, *, name: str = "sqlite",
                 threads: int = 2, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.dialect = dialect
        self.busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=threads,
                                            thread_name_prefix=f"read-{name}")
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._plans: dict[tuple[Table, str, tuple[str, ...], int], _Plan] = {}
        self._closed = False
        # Statements run, for statement-count tests and benchmarks (the engine's
        # ``before_cursor_execute`` event does not see these).
        self.statements = 0

    # -- the statement ---------------------------------------------------------------------
    async def fetch_in(self, table: Table, column: str, keys: Sequence[Any],
                       order_by: Sequence[str] = ()) -> list[Row]:
        """Rows of ``table`` whose ``column`` is one of ``keys`` (already de-duplicated)."""
        if self._closed:
            raise sqlite3.ProgrammingError("the reader is closed")
        plan = self._plan(table, column, tuple(order_by), len(keys))
        params = list(keys) if plan.bind is None else [plan.bind(k) for k in keys]
        self.statements += 1
        running: list[sqlite3.Connection] = []
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, self._run, plan, params, running)
        try:
            return await future
        except asyncio.CancelledError:
            # The deadline passed: stop the statement rather than let it finish for nobody.
            for conn in running:
                conn.interrupt()
            raise

    def _run(self, plan: _Plan, params: list[Any],
             running: list[sqlite3.Connection]) -> list[Row]:
        conn = self._connection()
        running.append(conn)
        rows = conn.execute(plan.sql, params).fetchall()
        names = plan.names
        if not any(plan.processors):
            return [dict(zip(names, r, strict=True)) for r in rows]
        procs = plan.processors
        return [{n: (v if p is None or v is None else p(v))
                 for n, p, v in zip(names, procs, r, strict=True)} for r in rows]

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # check_same_thread=False only so that close() and interrupt() may come from the
            # event loop's thread; statements run on this thread alone.
            # mode=rw: a missing file is an error (the source is unavailable), not a new
            # empty database.
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
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

    def _build_plan(self, table: Table, column: str, order_by: tuple[str, ...],
                    n: int) -> _Plan:
        quote = self.dialect.identifier_preparer.quote
        cols = list(table.columns)
        names = tuple(c.name for c in cols)
        where = table.c[column]  # KeyError for a column the table lacks
        sql = (f"SELECT {', '.join(quote(c) for c in names)} FROM {quote(table.name)} "  # noqa: S608
               f"WHERE {quote(where.name)} IN ({', '.join('?' * n)})")
        if order_by:
            sql += " ORDER BY " + ", ".join(quote(table.c[c].name) for c in order_by)
        processors = tuple(
            c.type.dialect_impl(self.dialect).result_processor(self.dialect, None)
            for c in cols)
        bind = where.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return _Plan(sql, names, processors, bind)

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
