"""Each source fetch counts its own statements, also while other fetches of the same source
run at once in the same request: the count lives on the fetch (a context variable), not on
the source, whose counter sees every fetch's statements."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import insert

from connectors import observe
from connectors.registry import open_source
from connectors.sql import migrate
from connectors.sql.models import bureau
from connectors.sql.queries import fetch_in

VISITS = bureau.Visit.__table__


async def test_concurrent_fetches_of_one_source_count_their_own_statements(make_spec, backend):
    spec = make_spec("bureau", "bureau-observe")
    await migrate.upgrade(spec)
    pools: dict = {}
    source = open_source(spec, pg_pools=pools)
    try:
        async with source.engine.begin() as conn:
            await conn.execute(
                insert(VISITS),
                [
                    {
                        "mdtrt_id": "V00001",
                        "person_ref": "A",
                        "institution_code": "H33010600001",
                        "visit_type": "OUTPATIENT",
                        "begin_date": date(2024, 3, 1),
                        "diagnosis_codes": "J06.9",
                        "doctor_code": "D001",
                        "insuplc_admdvs": "330106",
                        "mdtrtarea_admvs": "330106",
                        "cross_region": False,
                    }
                ],
            )
        assert source.reader is not None  # keyed reads bypass the engine on both backends
        notes: dict[str, observe.Fetch] = {}
        both_running = asyncio.Barrier(3)

        async def keyed(name: str, count: int) -> None:
            with observe.fetching(source) as note:
                notes[name] = note
                await both_running.wait()  # the three fetches overlap from here on
                for _ in range(count):
                    await source.fetch_in(VISITS, "person_ref", ["A"])
                    await asyncio.sleep(0)  # let the others run a statement in between

        async def through_engine(count: int) -> None:
            with observe.fetching(source) as note:
                notes["engine"] = note
                await both_running.wait()
                for _ in range(count):
                    await fetch_in(source.engine, VISITS, "person_ref", ["A"])

        before = source.reader.statements
        await asyncio.gather(keyed("three", 3), keyed("five", 5), through_engine(2))
        assert source.reader.statements - before == 8  # the source saw both keyed fetches
        assert (notes["three"].statements, notes["five"].statements) == (3, 5)
        assert notes["engine"].statements == 2  # counted by the engine's cursor event
        # Outside any fetch nothing is counted, and nothing fails.
        await source.fetch_in(VISITS, "person_ref", ["A"])
        assert notes["three"].statements == 3
    finally:
        await source.health.close()
        if backend == "sqlite":
            source.reader.close()
        for pool in pools.values():
            await pool.close()
        await source.engine.dispose()
