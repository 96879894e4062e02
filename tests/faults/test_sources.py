"""Sources watched, not trusted: a hospital's SQLite file removed, replaced, truncated,
corrupted or locked while the gateway serves it; a PostgreSQL source's schema or database
dropped and restored, its server restarted. Each time the answers keep coming (200, the
other sources' rows), the source is named in SOURCE_UNAVAILABLE with a stable reason and
never answers stale rows, /readyz stays ready and lists it as degraded, and it recovers by
itself once it is back. Every answered request is in the audit log."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sqlite3
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from connectors.sql import migrate
from gateway.app import build_services
from gateway.audit_http import RECORDER
from security.audit.models import AuditEvent
from tests.support.faults import FULL, LONG_REASON, Table, runs
from tests.support.federation import Federation, make_id_number
from tests.support.postgres import Throwaway

HOSPITAL = "hospital-h33010600001"
OTHER = "hospital-h33020300002"
RECORD = """query($id: ID!) { testResults(personId: $id) { nodes { resultId } } }"""
FAST = {"health": {"retry_initial_seconds": 0.05, "retry_max_seconds": 0.3}}


async def world(fed: Federation) -> Federation:
    fed.settings = fed.settings.with_tables(**FAST)
    fed.ref = await fed.add_person(make_id_number(seq=71), "赵六")
    fed.here = await fed.add_result(fed.ref, source=HOSPITAL)
    fed.there = await fed.add_result(fed.ref, source=OTHER)
    services = build_services(fed.settings)
    fed.app_ = fed.app(services)
    fed.recorder = services.extras[RECORDER]
    # The patient reads their own results: no relation to prove at the hospital that is down.
    (fed.visit,) = await fed.add_visits(
        fed.ref, 1, with_prescriptions=False, begin=date.today() - timedelta(days=3)
    )
    fed.token_ = fed.token("patient", "330106", person=fed.ref)
    fed.clinician = fed.token("clinician", "H33010600001")
    return fed


class Tally:
    """Counts for one table row, from the answers seen."""

    def __init__(self, table: Table, case: str) -> None:
        self.row = table.row(case)
        self.request_ids: list[str] = []

    def saw(self, response, answered_rows: bool = True) -> dict:
        self.row.acknowledged += response.status_code == 200
        self.row.server_errors += response.status_code >= 500
        body = response.json() if response.status_code < 500 else {}
        if response.status_code == 200 and answered_rows:
            self.request_ids.append(response.headers["x-request-id"])
        return body

    def answered_personal_data(self, response) -> None:
        """Only answers that read personal data must be in the log (docs/audit.md)."""
        self.request_ids.append(response.headers["x-request-id"])


async def ask(fed, tally: Tally) -> tuple[set[str], dict[str, str]]:
    """(result ids answered, {failed source: reason})."""
    async with fed.client(fed.app_, fed.token_, "PATIENT_ACCESS") as client:
        response = await client.post(
            "/graphql", json={"query": RECORD, "variables": {"id": fed.ref}}
        )
    body = tally.saw(response, answered_rows=False)
    nodes = ((body.get("data") or {}).get("testResults") or {}).get("nodes") or []
    if nodes:
        tally.answered_personal_data(response)
    failed = {
        e["extensions"]["source"]: e["extensions"].get("reason")
        for e in body.get("errors", [])
        if e.get("extensions", {}).get("code") == "SOURCE_UNAVAILABLE"
    }
    for error in body.get("errors", []):
        assert "Error" not in error["message"], error  # no exception class in any message
    return {n["resultId"] for n in nodes}, failed


async def readyz(fed) -> dict:
    async with fed.client(fed.app_, None) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200, response.text  # one source down: still ready
    return response.json()


async def recovered(fed, tally: Tally, expected: set[str], within: float = 15.0) -> None:
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        ids, failed = await ask(fed, tally)
        if not failed and ids == expected:
            assert (await readyz(fed))["degraded"] == []
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not recovered: {ids} {failed}")


async def unlogged(fed, tally: Tally) -> int:
    """Answered requests with no event in the audit log."""
    await fed.recorder.settled()
    async with fed.recorder.engine.connect() as conn:
        entries = (await conn.execute(select(AuditEvent.__table__.c.entry))).scalars().all()
    logged = {orjson.loads(entry)["event"].get("requestId") for entry in entries}
    return sum(1 for rid in tally.request_ids if rid not in logged)


def sqlite_copy(path: Path, to: Path) -> None:
    src, dst = sqlite3.connect(path), sqlite3.connect(to)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def put_back(copy: Path, path: Path) -> None:
    """Restore as the runbook says: a whole copy renamed into place, no stale -wal/-shm."""
    staged = path.with_suffix(".restoring")
    shutil.copy(copy, staged)
    for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        extra.unlink(missing_ok=True)
    os.replace(staged, path)


def remove(path: Path) -> None:
    os.rename(path, path.with_suffix(".gone"))


def replace_with_other_rows(path: Path, copy: Path) -> str:
    other = path.with_suffix(".other")
    shutil.copy(copy, other)
    conn = sqlite3.connect(other)
    conn.execute("UPDATE test_results SET result_id = 'RREPLACED01' WHERE 1")
    conn.commit()
    conn.close()
    os.replace(other, path)
    return "RREPLACED01"


def truncate(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(4096)


def corrupt(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.write(b"this is no sqlite header!")


SQLITE_FAULTS = [
    ("removed", remove, "FILE_MISSING"),
    ("replaced", None, "FILE_REPLACED"),
    ("truncated", truncate, "FILE_TRUNCATED"),
    ("corrupted", corrupt, "FILE_CORRUPT"),
]


@pytest.mark.parametrize(
    ("name", "fault", "reason"), SQLITE_FAULTS, ids=[f[0] for f in SQLITE_FAULTS]
)
async def test_a_sqlite_source_file_that_changes_under_the_gateway(
    data_dir, fault_table, name, fault, reason
):
    fed = await world(await Federation(data_dir).setup())
    tally = Tally(fault_table, f"sqlite source file {name}")
    path = data_dir / "sources" / f"{HOSPITAL}.db"
    both = {fed.here, fed.there}
    assert (await ask(fed, tally))[0] == both
    copy = data_dir / "kept.db"
    sqlite_copy(path, copy)
    for _ in range(runs(2, 5)):
        tally.row.runs += 1
        if fault is None:
            stale, fresh = fed.here, replace_with_other_rows(path, copy)
        else:
            stale, fresh = fed.here, fed.here
            fault(path)
        ids, failed = await ask(fed, tally)
        # Never the old file's rows; the other hospital still answers beside the error.
        assert failed == {HOSPITAL: reason}, failed
        assert ids == {fed.there}
        ready = await readyz(fed)
        if fault is None and not ready["degraded"]:
            # A replacement is a whole source: under load the probe may already have
            # adopted it by now; what it serves is checked just below.
            assert ready["ready"] is True
        else:
            assert ready["ready"] is True and ready["degraded"] == [HOSPITAL]
            assert ready["sources"][HOSPITAL]["health"] == "unavailable"
            assert ready["sources"][HOSPITAL]["reason"] in {
                reason,
                "FILE_MISSING",
                "FILE_TRUNCATED",
                "FILE_CORRUPT",
                "SCHEMA_MISSING",
                "FILE_REPLACED",
            }
        if fault is None:
            # A replacement is itself a whole source: adopted by the probe, its rows served,
            # the old file's never again.
            await recovered(fed, tally, {fresh, fed.there})
            tally.row.lost += stale in (await ask(fed, tally))[0]
        put_back(copy, path)
        await recovered(fed, tally, both)
    tally.row.unlogged = await unlogged(fed, tally)
    assert (tally.row.lost, tally.row.unlogged, tally.row.server_errors) == (0, 0, 0)


async def test_a_locked_sqlite_source_refuses_writes_with_locked_and_keeps_answering_reads(
    data_dir, fault_table
):
    from tests.support.mutations import RECENT

    fed = await world(await Federation(data_dir).setup())
    tally = Tally(fault_table, "sqlite source locked")
    publish = """mutation($k: String!, $i: PublishTestResultInput!) {
      publishTestResult(idempotencyKey: $k, input: $i) { testResult { resultId } } }"""
    lab = {
        "category": "LAB",
        "itemName": "葡萄糖",
        "loincCode": "2345-7",
        "value": 5.0,
        "unit": "mmol/L",
        "personId": fed.ref,
        "visitId": fed.visit,
        "orderingDoctor": "D330106000123",
        "collectedAt": RECENT.isoformat(),
        "reportedAt": RECENT.isoformat(),
    }
    path = data_dir / "sources" / f"{HOSPITAL}.db"
    expected = {fed.here, fed.there}  # grows by the result each run writes after the lock
    for i in range(runs(1, 3)):
        tally.row.runs += 1
        locker = sqlite3.connect(path, isolation_level=None, timeout=5)
        locker.execute("BEGIN IMMEDIATE")
        locker.execute("UPDATE test_results SET item_name = item_name")
        try:
            ids, failed = await ask(fed, tally)  # WAL readers pass a writer's lock
            assert failed == {} and ids == expected
            async with fed.client(fed.app_, fed.clinician, "TREATMENT") as client:
                started = time.monotonic()
                refused = tally.saw(
                    await client.post(
                        "/graphql", json={"query": publish, "variables": {"k": f"lk{i}", "i": lab}}
                    )
                )
                assert time.monotonic() - started < 4.5  # LOCKED, before the 5 s deadline
            (error,) = refused["errors"]
            assert (error["extensions"]["code"], error["extensions"]["reason"]) == (
                "SOURCE_UNAVAILABLE",
                "LOCKED",
            )
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        async with fed.client(fed.app_, fed.clinician, "TREATMENT") as client:
            done = tally.saw(
                await client.post(
                    "/graphql", json={"query": publish, "variables": {"k": f"lk{i}", "i": lab}}
                )
            )
        assert "errors" not in done, done
        expected.add(done["data"]["publishTestResult"]["testResult"]["resultId"])
    tally.row.unlogged = await unlogged(fed, tally)
    assert (tally.row.lost, tally.row.unlogged, tally.row.server_errors) == (0, 0, 0)


@pytest.fixture(scope="module")
def throwaway():
    server = Throwaway()
    if problem := server.missing():
        pytest.skip(f"no throwaway PostgreSQL server: {problem}")
    server.init()
    yield server
    server.remove()


async def pg_world(data_dir, server: Throwaway, database: str) -> Federation:
    """All sources on the throwaway server; the hospital alone in ``database``."""
    server.sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    server.sql(f'CREATE DATABASE "{database}"')
    fed = Federation(data_dir, pg_schema=f"s{uuid.uuid4().hex[:8]}", pg_url=server.url)
    own = server.url.rsplit("/", 1)[0] + f"/{database}"
    fed.settings = dataclasses.replace(
        fed.settings,
        sources=tuple(
            dataclasses.replace(s, url=own, schema="hospital") if s.name == HOSPITAL else s
            for s in fed.settings.sources
        ),
    )
    await fed.setup()
    return await world(fed)


async def restore_hospital(fed, server: Throwaway, database: str, *, drop_db: bool) -> None:
    if drop_db:
        server.sql(f'CREATE DATABASE "{database}"')
    await migrate.upgrade(fed.settings.source(HOSPITAL))
    fed._engines.pop(HOSPITAL, None)
    await fed.add_result(fed.ref, source=HOSPITAL)


PG_FAULTS = ["schema dropped", "database dropped", "server restarted"]


@pytest.mark.skipif(not FULL, reason=LONG_REASON)
@pytest.mark.parametrize("name", PG_FAULTS)
async def test_a_postgresql_source_that_goes_away_and_comes_back(
    data_dir, throwaway, fault_table, name
):
    database = f"hosp_{name.split()[0]}"
    fed = await pg_world(data_dir, throwaway, database)
    tally = Tally(fault_table, f"postgresql source {name}")
    assert (await ask(fed, tally))[0] == {fed.here, fed.there}
    for _ in range(runs(1, 3)):
        tally.row.runs += 1
        if name == "schema dropped":
            throwaway.sql("DROP SCHEMA hospital CASCADE", database)
            expected = {"SCHEMA_MISSING"}
        elif name == "database dropped":
            throwaway.sql(f'DROP DATABASE "{database}" WITH (FORCE)', "postgres")
            expected = {"DATABASE_MISSING", "UNREACHABLE"}
        else:
            throwaway.stop("fast")
            expected = {"UNREACHABLE"}
        if name != "server restarted":
            ids, failed = await ask(fed, tally)
            assert set(failed) == {HOSPITAL} and failed[HOSPITAL] in expected, failed
            assert ids == {fed.there}
            assert (await readyz(fed))["degraded"] == [HOSPITAL]
            await restore_hospital(fed, throwaway, database, drop_db=name == "database dropped")
        else:
            ids, failed = await ask(fed, tally)  # every source is on this server
            assert failed and set(failed.values()) <= expected, failed
            throwaway.start()
        give_up = time.monotonic() + 20
        while time.monotonic() < give_up:
            ids, failed = await ask(fed, tally)
            if not failed and fed.there in ids and ids - {fed.there}:
                break
            await asyncio.sleep(0.2)
        assert not failed, failed
        assert (await readyz(fed))["degraded"] == []
    tally.row.unlogged = await unlogged(fed, tally)
    assert (tally.row.lost, tally.row.unlogged, tally.row.server_errors) == (0, 0, 0)
