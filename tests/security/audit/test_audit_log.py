"""The audit log in a real database: durable group-committed appends, proofs that verify
against signed checkpoints, one gap-free tree across processes and across a kill -9."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from connectors.sources import SourceSpec
from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from security.audit import (
    AuditLogError,
    AuditWriteError,
    open_checkpoint,
    verify_log,
)
from tests.support.audit_log import (
    NO_COUNT_CHECKPOINT,
    ORIGIN,
    appender,
    open_log,
    read_entries,
    sqlite_spec,
)
from tests.support.postgres import PG_URL


def pg_spec(schema: str) -> SourceSpec:
    return SourceSpec(name="gateway", kind="gateway", url=PG_URL, schema=schema)


@pytest.fixture
def spec(backend: str, data_dir: Path, request) -> SourceSpec:
    if backend == "postgres":
        return pg_spec(request.getfixturevalue("pg_schema"))
    return sqlite_spec(data_dir)


async def test_appends_are_numbered_in_order_and_proven(spec, data_dir) -> None:
    engine, log = await open_log(spec, data_dir, checkpoint_every=NO_COUNT_CHECKPOINT)
    try:
        await log.start()  # what the app's startup does, on either backend
        receipts = [await log.append({"n": n, "who": "doctor"}) for n in range(13)]
        assert [r.index for r in receipts] == list(range(13))
        signed = await log.checkpoint()
        checkpoint = open_checkpoint(signed.note, [log.signer], ORIGIN)
        assert (checkpoint.size, checkpoint.root) == (13, signed.root)
        for index in range(13):
            proof = await log.inclusion_proof(index, checkpoint.size)
            assert proof.leaf_hash == receipts[index].leaf_hash
            assert proof.root == checkpoint.root and proof.verify()
        for old in range(0, 14):
            proof = await log.consistency_proof(old, 13)
            assert proof.new_root == checkpoint.root and proof.verify()
        with pytest.raises(AuditLogError):
            await log.inclusion_proof(13)
        with pytest.raises(AuditLogError):
            await log.consistency_proof(3, 14)
        entries = await read_entries(engine)
        assert entries[5]["event"] == {"n": 5, "who": "doctor"} and entries[5]["index"] == 5
        report = await verify_log(engine, log.signer, origin=ORIGIN)
        assert report.ok and report.size == 13 and report.checkpoints == 1
    finally:
        await log.close()
        await engine.dispose()


async def test_concurrent_appends_share_commits(spec, data_dir) -> None:
    engine, log = await open_log(spec, data_dir, checkpoint_every=25)
    try:
        receipts = await asyncio.gather(*(log.append({"n": n}) for n in range(100)))
        assert sorted(r.index for r in receipts) == list(range(100))
        entries = await read_entries(engine)
        # Each transaction stamps its events with one time: far fewer commits than events.
        assert len({e["logged_at"] for e in entries}) < 20
        assert sorted(e["event"]["n"] for e in entries) == list(range(100))
        assert (await log.latest_checkpoint()).size >= 75
    finally:
        await log.close()
    report = await verify_log(engine, log.signer, origin=ORIGIN)
    assert report.ok and report.size == 100
    assert (await log.latest_checkpoint()).size == 100  # close signs what is left
    await engine.dispose()


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "writer-process"])
async def test_an_append_waits_for_another_writers_lock_instead_of_failing(
    data_dir, inline
) -> None:
    """Inline commits (one request in flight) never wait on the event loop: when another
    process holds SQLite's write lock, the append goes to the writer process and waits."""
    import sqlite3
    import threading
    import time

    engine, log = await open_log(
        sqlite_spec(data_dir), data_dir, checkpoint_every=NO_COUNT_CHECKPOINT
    )
    log.inline_when = lambda: inline
    try:
        assert (await log.append({"n": 0})).index == 0  # inline or not, a plain append
        other = sqlite3.connect(data_dir / "gateway.db", check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
        released = threading.Event()

        def release_later() -> None:
            time.sleep(0.3)
            other.rollback()
            released.set()

        threading.Thread(target=release_later).start()
        started = time.monotonic()
        receipt = await log.append({"n": 1})
        assert released.is_set() and time.monotonic() - started >= 0.25
        assert receipt.index == 1
        other.close()
        assert [e["event"]["n"] for e in await read_entries(engine)] == [0, 1]
        assert (await verify_log(engine, log.signer, origin=ORIGIN)).ok
    finally:
        await log.close()
        await engine.dispose()


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "queued"])
async def test_a_checkpoint_is_signed_within_checkpoint_seconds_of_new_events(
    data_dir, inline
) -> None:
    engine, log = await open_log(
        sqlite_spec(data_dir),
        data_dir,
        checkpoint_every=NO_COUNT_CHECKPOINT,
        checkpoint_seconds=0.3,
        checkpoint_on_close=False,
    )
    log.inline_when = lambda: inline
    try:
        for n in range(3):  # the first append opens the log; the others may go inline
            await log.append({"n": n})
        assert await log.latest_checkpoint() is None
        await asyncio.sleep(0.8)
        signed = await log.latest_checkpoint()
        assert signed is not None and signed.size == 3
        await asyncio.sleep(0.5)  # nothing new: no new checkpoint
        assert (await log.latest_checkpoint()).size == 3
        await log.append({"n": 3})
        await asyncio.sleep(0.8)
        assert (await log.latest_checkpoint()).size == 4
    finally:
        await log.close()
        await engine.dispose()


async def test_an_event_that_is_not_json_fails_only_its_caller(data_dir) -> None:
    engine, log = await open_log(sqlite_spec(data_dir), data_dir)
    try:
        with pytest.raises(TypeError):
            await log.append({"when": object()})
        assert (await log.append({"ok": True})).index == 0
    finally:
        await log.close()
        await engine.dispose()


async def test_a_failed_write_fails_closed(data_dir) -> None:
    spec = sqlite_spec(data_dir)
    engine, log = await open_log(spec, data_dir)
    await migrate.downgrade(spec, "gateway_0001")  # the tables are gone under the log
    try:
        with pytest.raises(AuditWriteError):
            await log.append({"n": 1})
    finally:
        await log.close()
        await engine.dispose()


async def test_gateway_migrations_match_the_models(spec) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from security.store import gateway_metadata

    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), gateway_metadata())
            )
    finally:
        await engine.dispose()
    assert diff == []
    await migrate.downgrade(spec, "gateway_0001")


def _acks(lines: list[str]) -> dict[int, tuple[str, int]]:
    acks = {}
    for line in lines:
        index, tag, n = line.split()
        acks[int(index)] = (tag, int(n))
    return acks


@pytest.mark.slow
async def test_kill_9_while_appending_loses_no_acknowledged_event(data_dir) -> None:
    spec = sqlite_spec(data_dir)
    engine, log = await open_log(spec, data_dir)  # creates the tables and the key
    await engine.dispose()
    worker = appender(spec.url, data_dir / "keys", "w", 0)
    lines = []
    try:
        assert worker.stdout is not None
        while len(lines) < 400:
            line = await asyncio.to_thread(worker.stdout.readline)
            assert line, "the appender died before it was killed"
            lines.append(line)
        worker.send_signal(signal.SIGKILL)
        lines += worker.stdout.read().splitlines()  # printed before the kill: acknowledged
    finally:
        worker.kill()
        worker.wait()
    acked = _acks(lines)

    engine, log = await open_log(spec, data_dir)
    try:
        entries = {e["idx"]: e for e in await read_entries(engine)}
        for index, (tag, n) in acked.items():
            assert entries[index]["event"]["n"] == n and entries[index]["event"]["tag"] == tag
        report = await verify_log(engine, log.signer, origin=ORIGIN)
        assert report.ok, report.summary()
        assert report.size >= len(acked)
        after = await log.append({"after": "restart"})
        assert after.index == report.size  # carries on where the log stopped, no gap
    finally:
        await log.close()
    assert (await verify_log(engine, log.signer, origin=ORIGIN)).ok
    await engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
async def test_two_processes_append_one_tree_on_postgres(pg_schema, data_dir) -> None:
    spec = pg_spec(pg_schema)
    engine, log = await open_log(spec, data_dir)
    await engine.dispose()
    workers = [appender(PG_URL, data_dir / "keys", tag, 150, pg_schema) for tag in "ab"]
    outputs = [await asyncio.to_thread(w.communicate) for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    acked = _acks([line for out, _ in outputs for line in out.splitlines()])
    assert sorted(acked) == list(range(300))  # every index handed out once, no gap
    assert sorted(acked.values()) == sorted((t, n) for t in "ab" for n in range(150))

    engine, log = await open_log(spec, data_dir)
    try:
        report = await verify_log(engine, log.signer, origin=ORIGIN)
        assert report.ok, report.summary()
        assert report.size == 300 and report.checkpoints >= 2
        entries = await read_entries(engine)
        assert [(e["event"]["tag"], e["event"]["n"]) for e in entries] == [
            acked[i] for i in range(300)
        ]
    finally:
        await log.close()
        await engine.dispose()
