"""Shared fixtures: temporary data directories and real PostgreSQL schemas.

Source and migration tests run on SQLite and again on the PostgreSQL server at
127.0.0.1:5432 (database ``test``; override with ``MEDFED_TEST_PG_URL``). Each PostgreSQL test
gets a schema of its own, dropped afterwards, so parallel or repeated runs never collide. If
the server does not answer, those tests are skipped with the reason shown.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from connectors.sources import SourceSpec
from tests.support.faults import FAULT_ROWS, TABLE, Row
from tests.support.postgres import PG_URL, pg_execute, pg_unavailable, run_sync


# The fault table is gathered here, in the process that prints the summary: with pytest-xdist
# that is the controller, which loads only this conftest.
def pytest_runtest_logreport(report) -> None:
    if report.when == "teardown":
        for name, rows in report.user_properties:
            if name == FAULT_ROWS:
                TABLE.rows.extend(Row(**row) for row in rows)


def pytest_terminal_summary(terminalreporter) -> None:
    if TABLE.rows:
        terminalreporter.section("faults")
        terminalreporter.write_line(TABLE.render())


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema name, created and dropped around the test."""
    problem = pg_unavailable()
    if problem:
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    run_sync(pg_execute(f'CREATE SCHEMA "{schema}"'))
    yield schema
    run_sync(pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(autouse=True)
async def _close_built_apps(request) -> AsyncIterator[None]:
    yield
    # A sync test's apps ran a lifespan; and no app was built where the module that builds
    # them was never imported (importing it for nothing costs seconds: the whole gateway).
    federation = sys.modules.get("tests.support.federation")
    if asyncio.iscoroutinefunction(request.function) and federation is not None:
        await federation.close_built()


@pytest.fixture
def embedded_cli(monkeypatch, tmp_path: Path) -> None:
    """``medfed`` commands run on the embedded defaults: no database URL or data directory
    from the environment, an empty configuration file."""
    monkeypatch.delenv("MEDFED_DATABASE_URL", raising=False)
    monkeypatch.delenv("MEDFED_DATA_DIR", raising=False)
    empty = tmp_path / "medfed.toml"
    empty.write_text("")
    monkeypatch.setenv("MEDFED_CONFIG", str(empty))


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
        drop = f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'
        request.addfinalizer(lambda: run_sync(pg_execute(drop)))
        return SourceSpec(name=name, kind=kind, url=PG_URL, schema=schema, **fields)

    return make
