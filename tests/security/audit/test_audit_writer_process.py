"""The SQLite audit writer process: a batch in flight when it is killed is recovered (what it
committed is found in the log, the rest goes to a new writer: nothing lost, nothing logged
twice), a writer that reports a failure fails its batch, and it never outlives its gateway."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from security.audit import AuditWriteError, verify_log
from tests.support.audit_log import (
    NO_COUNT_CHECKPOINT,
    ORIGIN,
    appender,
    open_log,
    read_entries,
    sqlite_spec,
)


def _writer_pid(log) -> int:
    proc = log._writer._proc
    assert proc is not None and proc.returncode is None
    return proc.pid


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_a_writer_killed_before_committing_is_replaced_and_the_batch_logged_once(
    data_dir,
) -> None:
    engine, log = await open_log(
        sqlite_spec(data_dir), data_dir, checkpoint_every=NO_COUNT_CHECKPOINT
    )
    try:
        await log.start()
        assert (await log.append({"n": 0})).index == 0
        pid = _writer_pid(log)
        os.kill(pid, signal.SIGSTOP)  # hold it, so the next append is surely in flight
        pending = asyncio.create_task(log.append({"n": 1}))
        await asyncio.sleep(0.2)
        assert not pending.done()
        os.kill(pid, signal.SIGKILL)
        receipt = await pending  # recovered: not committed, so appended by a new writer
        assert receipt.index == 1
        assert _writer_pid(log) != pid
        assert (await log.append({"n": 2})).index == 2
        assert [e["event"]["n"] for e in await read_entries(engine)] == [0, 1, 2]
    finally:
        await log.close()
    assert (await verify_log(engine, log.signer, origin=ORIGIN)).ok
    await engine.dispose()


async def test_a_writer_killed_after_committing_is_not_asked_again(data_dir, monkeypatch) -> None:
    # The child pauses after its second commit, before replying: killed there, the batch is
    # in the log though never acknowledged, and must not be appended a second time.
    monkeypatch.setenv("MEDFED_FAILPOINTS", "audit_writer.committed=pause@2")
    monkeypatch.setenv("MEDFED_FAILPOINT_DIR", str(data_dir))
    engine, log = await open_log(
        sqlite_spec(data_dir), data_dir, checkpoint_every=NO_COUNT_CHECKPOINT
    )
    try:
        await log.start()
        assert (await log.append({"n": 0})).index == 0
        pid = _writer_pid(log)
        pending = asyncio.create_task(log.append({"n": 1}))
        reached = data_dir / "audit_writer.committed.reached"
        for _ in range(200):
            if reached.exists():
                break
            await asyncio.sleep(0.05)
        assert reached.read_text() == str(pid)
        os.kill(pid, signal.SIGKILL)
        receipt = await pending
        assert receipt.index == 1  # found where the dead writer put it
        assert [e["event"]["n"] for e in await read_entries(engine)] == [0, 1]
        assert (await log.append({"n": 2})).index == 2
    finally:
        await log.close()
    assert (await verify_log(engine, log.signer, origin=ORIGIN)).ok
    await engine.dispose()


async def test_a_writer_that_cannot_open_the_database_says_why(data_dir) -> None:
    engine, log = await open_log(sqlite_spec(data_dir), data_dir)
    await log.append({"n": 0})
    await log.close()
    await engine.dispose()
    engine, log = await open_log(sqlite_spec(data_dir), data_dir)
    try:
        await log._ensure_head()
        log._sqlite_file = data_dir / "missing" / "gateway.db"
        with pytest.raises(AuditWriteError, match=r"did not start.*unable to open database"):
            await log.append({"n": 1})
    finally:
        await log.close()
        await engine.dispose()


@pytest.mark.slow
async def test_the_writer_exits_when_its_gateway_is_killed(data_dir) -> None:
    spec = sqlite_spec(data_dir)
    engine, log = await open_log(spec, data_dir)  # creates the tables and the key
    await engine.dispose()
    worker = appender(spec.url, data_dir / "keys", "w", 0)
    try:
        assert worker.stdout is not None
        for _ in range(20):  # appending through its writer
            assert await asyncio.to_thread(worker.stdout.readline)
        writers = _children(worker.pid)
        assert len(writers) == 1 and _alive(writers[0])
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert await asyncio.to_thread(_gone_within, writers[0], 10.0), (
            "the audit writer outlived its gateway"
        )
    finally:
        worker.kill()
        worker.wait()
    engine, log = await open_log(spec, data_dir)
    try:
        assert (await verify_log(engine, log.signer, origin=ORIGIN)).ok
    finally:
        await log.close()
        await engine.dispose()
