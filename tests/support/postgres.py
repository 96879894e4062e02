"""The PostgreSQL server the tests use (127.0.0.1:5432, database ``test``; override with
``MEDFED_TEST_PG_URL``), checked once per run."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os

PG_URL = os.environ.get("MEDFED_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def pg_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_sync(coro):
    # A thread of its own, so this works from inside a running event loop (async tests) too.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


_pg_problem: list[str | None] = []


def pg_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or ``None`` if it answers (checked once per run)."""
    if not _pg_problem:
        try:
            run_sync(pg_execute("SELECT 1"))
            _pg_problem.append(None)
        except Exception as exc:  # any failure to connect means: skip, and say why
            _pg_problem.append(f"PostgreSQL at {PG_URL} does not answer: {exc!r}")
    return _pg_problem[0]
