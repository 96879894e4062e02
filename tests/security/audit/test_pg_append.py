"""The audit log's one-statement append on PostgreSQL (security.audit.pg_append): a batch is
one round trip, a head moved by another writer is rebuilt on, derived updates and lost races
take the locking transaction, a dropped connection is replaced, and whatever path each batch
took the log verifies (tree, checkpoints and every derived table)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from security.audit import AuditWriteError, verify_log
from security.audit.alert_state import ALERTS, OPEN, RESOLVED, change_event
from security.audit.events import now_iso
from security.audit.index import INDEX
from tests.support.audit_log import ORIGIN, open_log, read_entries
from tests.support.postgres import PG_URL, pg_execute

pytestmark = pytest.mark.postgres


def _spec(schema: str):
    from connectors.sources import SourceSpec

    return SourceSpec(name="gateway", kind="gateway", url=PG_URL, schema=schema)


def _read(n: int, person: str = "p1") -> dict:
    """A gateway-like access event: its ``time`` makes the log derive an index row."""
    return {
        "v": 1,
        "kind": "QUERY",
        "time": now_iso(),
        "requestId": f"req-{n}",
        "principal": {"sub": "doctor-1", "org": "H33010600001", "role": "clinician"},
        "purpose": "TREATMENT",
        "breakGlass": False,
        "persons": [{"personId": person, "read": [], "masked": [], "denied": []}],
        "holders": ["H33010600001"],
        "outcome": "OK",
        "errors": [],
    }


async def _verified(engine, log) -> None:
    report = await verify_log(engine, log.signer, origin=ORIGIN)
    assert report.ok, report.summary()


async def test_a_lone_append_is_one_round_trip_and_verifies(pg_schema, data_dir: Path) -> None:
    engine, log = await open_log(_spec(pg_schema), data_dir, checkpoint_every=4)
    try:
        await log.start()
        first = await log.append(_read(0))
        pg = log._pg
        assert pg is not None
        before = pg.round_trips
        receipts = [await log.append(_read(n)) for n in range(1, 9)]
        # Each batch is one statement (its preparation once per shape, on the first one).
        assert pg.round_trips - before == len(receipts)
        assert [r.index for r in [first, *receipts]] == list(range(9))
        async with engine.connect() as conn:
            indexed = (await conn.execute(select(INDEX.c.idx).order_by(INDEX.c.idx))).scalars()
            assert list(indexed) == list(range(9))  # derived rows in the same statement
        # Checkpoints due at 4 and 8 were signed inside the batches that reached them.
        assert (await log.checkpoint_at(4)) is not None
        assert (await log.checkpoint_at(8)) is not None
        assert (await log.checkpoint_at(5)) is None
        await _verified(engine, log)
    finally:
        await log.close()
        await engine.dispose()


async def test_two_logs_on_one_database_rebuild_on_each_others_heads(
    pg_schema, data_dir: Path
) -> None:
    engine, a = await open_log(_spec(pg_schema), data_dir)
    _, b = await open_log(_spec(pg_schema), data_dir)
    b.engine = engine
    try:
        got = []
        for n in range(12):
            writer = a if n % 3 else b  # each sees the other's appends only as a moved head
            got.append((await writer.append(_read(n, f"p{n}"))).index)
        assert got == list(range(12))
        # Every change of writer but a's and b's first (they read the head then).
        assert a._pg.races + b._pg.races == 6
        assert a._pg.handed_back == b._pg.handed_back == 0
        entries = await read_entries(engine)
        assert [e["event"]["requestId"] for e in entries] == [f"req-{n}" for n in range(12)]
        await _verified(engine, a)
    finally:
        await a.close()
        await b.close()
        await engine.dispose()


async def test_a_derived_update_goes_through_the_lock_and_the_next_batch_continues(
    pg_schema, data_dir: Path
) -> None:
    engine, log = await open_log(_spec(pg_schema), data_dir)
    try:
        opened = {
            **_read(0),
            "breakGlass": True,
            "breakGlassOpened": {"persons": ["p1"], "reason": {"code": "EMERGENCY"}},
        }
        alert = (await log.append(opened)).index
        closing = change_event(
            target="alert",
            target_id=alert,
            action="RESOLVE",
            from_state=OPEN,
            state=RESOLVED,
            owner=None,
            principal=None,
            purpose="AUDIT",
            note=None,
            holders=["H33010600001"],
            request_id="req-close",
        )
        pg = log._pg
        assert pg is not None and pg.handed_back == 0
        assert (await log.append(closing)).index == alert + 1
        assert pg.handed_back == 1  # the update went through the locking transaction
        trips = pg.round_trips
        assert (await log.append(_read(2))).index == alert + 2
        # The next batch starts from the head the transaction left (no read of it): its
        # statement prepared (a new shape: no alert row) and sent.
        assert pg.round_trips == trips + 2 and pg.races == 0
        async with engine.connect() as conn:
            state = (await conn.execute(select(ALERTS.c.state, ALERTS.c.state_idx))).one()
        assert tuple(state) == (RESOLVED, alert + 1)
        await _verified(engine, log)
    finally:
        await log.close()
        await engine.dispose()


async def test_a_dropped_connection_is_replaced(pg_schema, data_dir: Path) -> None:
    engine, log = await open_log(_spec(pg_schema), data_dir)
    try:
        await log.append(_read(0))
        pg = log._pg
        assert pg is not None and pg._driver is not None
        pid = pg._driver.get_server_pid()
        await pg_execute(f"SELECT pg_terminate_backend({pid})")
        # Noticed before sending (a new connection) or while sending (recovered): either
        # way the request is logged, once, not refused.
        assert (await log.append(_read(1))).index == 1
        assert pg._driver.get_server_pid() != pid
        assert (await log.append(_read(2))).index == 2
        entries = await read_entries(engine)
        assert [e["event"]["requestId"] for e in entries] == ["req-0", "req-1", "req-2"]
        await _verified(engine, log)
    finally:
        await log.close()
        await engine.dispose()


@pytest.mark.parametrize("committed", [True, False])
async def test_a_batch_lost_in_flight_is_logged_exactly_once(
    pg_schema, data_dir: Path, committed: bool
) -> None:
    """The connection breaks with the statement sent: after it committed (the reply lost)
    or before the server ran it. Recovery finds what committed and sends only the rest."""
    import asyncpg

    engine, log = await open_log(_spec(pg_schema), data_dir)
    try:
        await log.append(_read(0))
        pg = log._pg
        assert pg is not None
        real = pg._fetchrow
        broken: list[int] = []

        async def fetchrow(sql: str, *args):
            if broken or not sql.startswith("WITH"):
                return await real(sql, *args)
            broken.append(pg._driver.get_server_pid())
            if committed:
                await real(sql, *args)
            await pg_execute(f"SELECT pg_terminate_backend({broken[0]})")
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection lost (test)")

        pg._fetchrow = fetchrow
        assert (await log.append(_read(1))).index == 1
        assert broken and pg._driver.get_server_pid() != broken[0]
        assert (await log.append(_read(2))).index == 2
        entries = await read_entries(engine)
        assert [e["event"]["requestId"] for e in entries] == ["req-0", "req-1", "req-2"]
        await _verified(engine, log)
    finally:
        await log.close()
        await engine.dispose()


async def test_a_failed_statement_logs_none_of_its_batch(pg_schema, data_dir: Path) -> None:
    engine, log = await open_log(_spec(pg_schema), data_dir)
    try:
        await log.append(_read(0))
        # A row squatting on the next index: the batch's insert fails, and with it the head's
        # move and the index rows of the same statement.
        await pg_execute(
            f'INSERT INTO "{pg_schema}".audit_events (idx, leaf_hash, entry, created_at)'
            " VALUES (1, '\\x00', '\\x00', now())"
        )
        with pytest.raises(AuditWriteError):
            await log.append(_read(1))
        assert await log.size() == 1
        async with engine.connect() as conn:
            assert list((await conn.execute(select(INDEX.c.idx))).scalars()) == [0]
        await pg_execute(f'DELETE FROM "{pg_schema}".audit_events WHERE idx = 1')
        assert (await log.append(_read(2))).index == 1  # the control: the same log goes on
        await _verified(engine, log)
    finally:
        await log.close()
        await engine.dispose()
