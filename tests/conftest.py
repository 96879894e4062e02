"""Shared fixtures: temporary data directories and real PostgreSQL schemas.

Source and migration tests run on SQLite and again on the PostgreSQL server at
127.0.0.1:5432 (database ``test``; override with ``MEDFED_TEST_PG_URL``). Each PostgreSQL test
gets a schema of its own, dropped afterwards, so parallel or repeated runs never collide. If
the server does not answer, those tests are skipped with the reason shown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from connectors.sources import SourceSpec

PG_URL = os.environ.get("MEDFED_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _run(coro):
    # A thread of its own, so this works from inside a running event loop (async tests) too.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


_pg_problem: list[str | None] = []


def pg_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or ``None`` if it answers (checked once per run)."""
    if not _pg_problem:
        try:
            _run(_pg_execute("SELECT 1"))
            _pg_problem.append(None)
        except Exception as exc:  # any failure to connect means: skip, and say why
            _pg_problem.append(f"PostgreSQL at {PG_URL} does not answer: {exc!r}")
    return _pg_problem[0]


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema name, created and dropped around the test."""
    problem = pg_unavailable()
    if problem:
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _run(_pg_execute(f'CREATE SCHEMA "{schema}"'))
    yield schema
    _run(_pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(autouse=True)
async def _close_built_apps(request) -> AsyncIterator[None]:
    yield
    if asyncio.iscoroutinefunction(request.function):  # a sync test's apps ran a lifespan
        from tests.federation import close_built

        await close_built()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def make_spec(backend: str, data_dir: Path, request) -> Callable[..., SourceSpec]:
    """Build a ``SourceSpec`` on the parametrised backend: a SQLite file under the test's data
    directory, or a schema of its own in the PostgreSQL test database."""
    base = request.getfixturevalue("pg_schema") if backend == "postgres" else None

    def make(kind: str, name: str | None = None, **fields) -> SourceSpec:
        name = name or kind
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{data_dir.as_posix()}/sources/{name}.db"
            return SourceSpec(name=name, kind=kind, url=url, **fields)
        schema = f"{base}_{name.replace('-', '_')}"
        request.addfinalizer(lambda: _run(_pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')))
        return SourceSpec(name=name, kind=kind, url=PG_URL, schema=schema, **fields)

    return make
