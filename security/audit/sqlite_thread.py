"""Running a whole SQLite transaction on aiosqlite's connection thread in one hand-off.

aiosqlite owns each ``sqlite3`` connection on a thread of its own and forwards every call
there through a queue; a transaction of several statements therefore pays several thread
round trips. ``aiosqlite.Connection._execute`` runs any function on that thread, the way
aiosqlite's own methods do. It is not public API, so :func:`runner` checks for it and
returns ``None`` when it is missing, and callers fall back to statement-by-statement.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
Runner = Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]


def runner(driver_connection: Any) -> Runner | None:
    """A function that runs ``work(sqlite3_connection)`` on the driver's thread, or None."""
    execute = getattr(driver_connection, "_execute", None)
    if not callable(execute) or not hasattr(type(driver_connection), "_conn"):
        return None

    async def run(work: Callable[[sqlite3.Connection], T]) -> T:
        # ``_conn`` is read on the driver's thread: it raises if the connection closed.
        return await execute(lambda: work(driver_connection._conn))

    return run


def begin_immediate(db: sqlite3.Connection, patience: float) -> None:
    """Take SQLite's write lock, retrying while another writer holds it.

    IMMEDIATE takes the lock before anything is read, so no other process can move what
    we read before we write. Blocking here is blocking only this connection's thread.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


_SYNC_LEVELS = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}


@contextlib.contextmanager
def synchronous(db: sqlite3.Connection, level: str | None) -> Iterator[None]:
    """``PRAGMA synchronous=level`` inside the block, the connection's own level after.

    SQLite applies the level at COMMIT, so a transaction committed inside is synced at
    ``level``. ``None`` leaves the connection as it is.
    """
    if level is None:
        yield
        return
    (before,) = db.execute("PRAGMA synchronous").fetchone()
    db.execute(f"PRAGMA synchronous={_SYNC_LEVELS[level]}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA synchronous={int(before)}")
