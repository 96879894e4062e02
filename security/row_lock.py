"""One change of a warning or an alert at a time, across every worker of the gateway.

A handler reads the row's state, checks the action against it and logs the change; two
workers doing that at once would both read OPEN and both log a close. The lock is taken in
the database the row lives in, so it holds across processes: on PostgreSQL a transaction
advisory lock keyed by the row (``pg_advisory_xact_lock``), held on a connection of its own
until the change is logged; on a SQLite file an exclusive ``flock`` of a lock file beside it
(every worker of a SQLite gateway runs on the same machine). The change event commits before
the lock is released, and its derive hook sets the state in that commit, so the next holder
reads the state the change left. An in-memory database has one process: no lock is needed
beyond the caller's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def lock_key(name: str) -> int:
    """A signed 64-bit key for ``name`` (PostgreSQL's advisory lock space)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_file(engine: AsyncEngine) -> Path | None:
    """The lock file beside a SQLite file database, or None (in memory)."""
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(f"{database}.handling.lock")


@contextlib.asynccontextmanager
async def held(engine: AsyncEngine, name: str) -> AsyncIterator[None]:
    """Hold the lock of ``name`` (a row, "warning:<id>") in ``engine``'s database."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(name)})
            yield  # the transaction's end releases it
        return
    path = lock_file(engine)
    if path is None:
        yield
        return
    # One lock for every row of the file: handling is a person's action, rare and short.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
