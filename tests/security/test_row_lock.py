"""The handling lock holds across engines (as across worker processes): on PostgreSQL by an
advisory lock, on a SQLite file by a lock file; two holders of one row take turns, two rows
do not wait for each other on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.pool import NullPool

from connectors.sources import SourceSpec
from connectors.sql.engine import create_source_engine
from security.row_lock import held
from tests.support.postgres import PG_URL, pg_unavailable


def _engines(backend: str, tmp_path) -> list:
    if backend == "postgres":
        if (why := pg_unavailable()) is not None:
            pytest.skip(why)
        spec = SourceSpec(name="gateway", kind="gateway", url=PG_URL)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path.as_posix()}/gateway.db"
        spec = SourceSpec(name="gateway", kind="gateway", url=url)
    return [create_source_engine(spec, poolclass=NullPool) for _ in range(2)]


async def _turns(engines, names) -> list[str]:
    order: list[str] = []
    first_in = asyncio.Event()

    async def hold(who: str, engine, name: str, wait: asyncio.Event | None) -> None:
        if wait is not None:
            await wait.wait()
        async with held(engine, name):
            order.append(f"{who} in")
            first_in.set()
            await asyncio.sleep(0.3)  # the other tries meanwhile
            order.append(f"{who} out")

    await asyncio.gather(
        hold("A", engines[0], names[0], None), hold("B", engines[1], names[1], first_in)
    )
    return order


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_engines_take_turns_on_one_row(backend, tmp_path):
    engines = _engines(backend, tmp_path)
    try:
        same = "warning:sup19b-test-1"
        assert await _turns(engines, (same, same)) == ["A in", "A out", "B in", "B out"]
        if backend == "postgres":  # positive control: another row does not wait
            other = await _turns(engines, (same, "warning:sup19b-test-2"))
            assert other[:2] == ["A in", "B in"]
    finally:
        for engine in engines:
            await engine.dispose()
