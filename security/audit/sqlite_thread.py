"""The audit log's own SQLite connection: one hand-off per append, or none when idle.

Through the async engine an append paid a pool checkout, a greenlet switch and a thread
round trip per statement, and a reset on return: about two milliseconds before the fsync.
Here the whole transaction (lock, read head, insert, move head, sign if due, commit) runs
as one function on a plain ``sqlite3`` connection, with the same statements and the same
durability: the caller's future resolves only after COMMIT returned. Other processes
writing the same file still serialize on SQLite's write lock.

The function runs on the connection's own thread, so the event loop serves other requests
while the commit waits for the disk; or, with :meth:`WriterConnection.run_inline`, on the
caller's thread, which saves the two thread hand-offs (about 0.7 ms here) when there is
nothing else for the loop to do meanwhile. Inline work must not wait for a lock: the
connection has no busy timeout, and :func:`begin_immediate` with no patience fails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class WriterConnection:
    """A ``sqlite3`` connection to ``path`` used only on this object's single thread.

    ``full_sync``: ``synchronous=FULL`` (each commit fsyncs the WAL: durable across power
    loss), else ``NORMAL`` (durable across process crashes). Opened on first use.
    """

    def __init__(self, path: Path, *, full_sync: bool) -> None:
        self.path = path
        self.full_sync = full_sync
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")
        self._db: sqlite3.Connection | None = None
        self._busy = threading.Lock()  # one piece of work at a time, whichever thread

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` on the writer thread; its exceptions are raised here."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._call, work)

    def run_inline(self, work: Callable[[sqlite3.Connection], T]) -> T | None:
        """``work(connection)`` on this thread now, or None if the connection is in use."""
        if not self._busy.acquire(blocking=False):
            return None
        try:
            return self._with_connection(work)
        finally:
            self._busy.release()

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._busy:
            return self._with_connection(work)

    def _with_connection(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            self._db = self._open()
        return work(self._db)

    def _open(self) -> sqlite3.Connection:
        # mode=rw: a missing database is an error (run `medfed db upgrade`), not a new file.
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True,
                             check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self.full_sync else 'NORMAL'}")
        # No busy timeout: begin_immediate waits for the lock itself, and only on the
        # writer thread (inline work gives up at once).
        db.execute("PRAGMA busy_timeout=0")
        return db

    async def close(self) -> None:
        def shut() -> None:
            with self._busy:
                if self._db is not None:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.close()
                    self._db = None

        with contextlib.suppress(RuntimeError):  # closed before
            await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)


def begin_immediate(db: sqlite3.Connection, patience: float) -> None:
    """Take SQLite's write lock, retrying while another writer holds it.

    IMMEDIATE takes the lock before anything is read, so no other process can move what
    we read before we write. Blocking here is blocking only the writer thread.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def is_locked(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    return "locked" in str(exc) or "busy" in str(exc)
