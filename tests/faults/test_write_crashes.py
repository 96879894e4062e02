"""Audit before acknowledgement, for writes too: the gateway (kill -9) and its SQLite audit
writer (kill -9) are killed at every step of a mutation, real processes each time:

* the gateway, paused at ``mutation.before_intent``, ``after_intent``, ``after_write`` and
  ``after_outcome`` (``security.failpoints``), is killed and started again;
* the audit writer is killed while the gateway is paused at each of those steps, and while
  it holds the intent's or the outcome's batch, before and after committing it.

Then the client retries with the same idempotency key until it is answered. Afterwards:
every row at the source is named by an intent in the audit log (``unlogged``), every
acknowledged write is at the source (``lost``), every intent has its outcome (start-up
reconcile settles the dead process's), the retries replay the same object, no answer was
a 5xx, and ``medfed audit verify`` passes. On PostgreSQL (sources and gateway database on a
throwaway server) the audit writer is the gateway process itself, so the gateway is killed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select

from connectors.sql.engine import create_source_engine
from connectors.sql.models import hospital
from gateway.config import Settings, load_settings
from security.audit.models import AuditEvent
from security.audit.writes import outcomes_in
from tests.support import REPO
from tests.support.faults import FULL, LONG_REASON, Row, Table
from tests.support.federation import Federation, make_id_number
from tests.support.mutations import RECENT
from tests.support.postgres import Throwaway
from tests.support.processes import Process, free_port, medfed

HOSPITAL = "hospital-h33010600001"
PUBLISH = """mutation($k: String!, $i: PublishTestResultInput!) {
  publishTestResult(idempotencyKey: $k, input: $i) { replayed testResult { resultId } } }"""
GATEWAY_STEPS = [
    "mutation.before_intent",
    "mutation.after_intent",
    "mutation.after_write",
    "mutation.after_outcome",
]
WRITER_IN_BATCH = [
    "audit_writer.received=pause@1",  # the intent's batch, nothing written yet
    "audit_writer.committed=pause@1",  # the intent committed, not acknowledged
    "audit_writer.received=pause@2",  # the outcome's batch
    "audit_writer.committed=pause@2",
]


@dataclass
class World:
    data_dir: Path
    settings: Settings
    env: dict[str, str]
    ref: str
    token: str
    config: Path
    visit: str
    port: int = field(default_factory=free_port)


def _seed(data_dir: Path, pg_url: str | None) -> World:
    async def run() -> World:
        fed = Federation(data_dir)
        env = {"MEDFED_DATABASE_URL": pg_url} if pg_url else {}
        if pg_url:
            fed.settings = load_settings(REPO / "medfed.toml", data_dir=data_dir, env=env)
        await fed.setup()
        ref = await fed.add_person(make_id_number(seq=91), "钱七")
        # A recent visit at the publishing hospital (a result names the visit it belongs to).
        (visit,) = await fed.add_visits(
            ref, 1, with_prescriptions=False, begin=date.today() - timedelta(days=3)
        )
        config = data_dir / "medfed-faults.toml"
        config.write_text(
            (REPO / "medfed.toml").read_text()
            + "\n[audit]\ninline_appends = false\n"  # every append through the writer
            + "\n[audit.reconcile]\nevery_seconds = 1\n"
        )
        token = fed.token("clinician", "H33010600001")
        return World(data_dir, fed.settings, env, ref, token, config, visit)

    return asyncio.run(run())


def _read(settings: Settings) -> tuple[list[dict], set[str]]:
    """(every audit event, every result id at the hospital)."""

    async def run():
        gateway = create_source_engine(settings.gateway_spec)
        source = create_source_engine(settings.source(HOSPITAL))
        try:
            table = AuditEvent.__table__
            async with gateway.connect() as conn:
                rows = await conn.execute(select(table.c.idx, table.c.entry).order_by(table.c.idx))
                events = [{**orjson.loads(e)["event"], "_index": i} for i, e in rows]
            async with source.connect() as conn:
                table = hospital.TestResult.__table__
                ids = set((await conn.execute(select(table.c.result_id))).scalars())
        finally:
            await gateway.dispose()
            await source.dispose()
        return events, ids

    return asyncio.run(run())


def _pending(events: list[dict]) -> list[dict]:
    """Intents no outcome names (an outcome names its intent by the intent's log index)."""
    settled = {w["intent"] for e in events for w in outcomes_in(e)}
    return [e for e in events if e.get("phase") == "INTENT" and e["_index"] not in settled]


def _post(url: str, world: World, key: str) -> tuple[int, dict] | None:
    lab = {
        "category": "LAB",
        "itemName": "葡萄糖",
        "loincCode": "2345-7",
        "value": 5.5,
        "unit": "mmol/L",
        "personId": world.ref,
        "visitId": world.visit,
        "orderingDoctor": "D330106000123",
        "collectedAt": RECENT.isoformat(),
        "reportedAt": RECENT.isoformat(),
    }
    try:
        response = httpx.post(
            url + "/graphql",
            json={"query": PUBLISH, "variables": {"k": key, "i": lab}},
            headers={"Authorization": f"Bearer {world.token}", "X-Purpose-Of-Use": "TREATMENT"},
            timeout=60,
        )
    except httpx.HTTPError:
        return None  # the gateway died mid-request: no answer at all
    return response.status_code, response.json() if response.status_code < 500 else {}


def _acknowledged(answer: tuple[int, dict] | None) -> str | None:
    if answer is None or answer[0] != 200 or answer[1].get("errors"):
        return None
    return answer[1]["data"]["publishTestResult"]["testResult"]["resultId"]


def _wait_for(path: Path, within: float = 60) -> None:
    give_up = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < give_up, f"{path.name} never reached"
        time.sleep(0.02)


def _gateway(world: World, failpoint: str | None, folder: Path) -> Process:
    env = dict(world.env)
    if failpoint:
        env |= {
            "MEDFED_FAILPOINTS": failpoint if "=" in failpoint else f"{failpoint}=pause",
            "MEDFED_FAILPOINT_DIR": str(folder),
        }
    return medfed(world.data_dir, port=world.port, config=world.config, env=env).start(timeout=90)


def one_run(world: World, row: Row, key: str, failpoint: str, target: str) -> None:
    """Kill ``target`` ("gateway" or "writer") at ``failpoint``, retry, and check."""
    folder = world.data_dir / f"fp-{key}"
    folder.mkdir()
    point = failpoint.split("=")[0]
    answers: list[tuple[int, dict] | None] = []
    gateway = _gateway(world, failpoint, folder)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            first = pool.submit(_post, gateway.url, world, key)
            _wait_for(folder / f"{point}.reached")
            if target == "gateway":
                gateway.kill9()
            elif point.startswith("audit_writer."):
                os.kill(int((folder / f"{point}.reached").read_text()), signal.SIGKILL)
            else:
                for pid in gateway.children():  # the audit writer
                    os.kill(pid, signal.SIGKILL)
                (folder / f"{point}.go").touch()
            answers.append(first.result(timeout=90))
        if target == "gateway":
            gateway = _gateway(world, None, folder)  # start-up reconciles the dead one's intents
        for _ in range(10):  # the client retries with the same key until it is answered
            if _acknowledged(answers[-1]):
                break
            answers.append(_post(gateway.url, world, key))
            time.sleep(0.2)
        give_up = time.monotonic() + 30
        while _pending(_read(world.settings)[0]) and time.monotonic() < give_up:
            time.sleep(0.3)
    finally:
        gateway.stop()
    events, at_source = _read(world.settings)
    named = {
        e["write"]["objectId"]
        for e in events
        if e.get("phase") == "INTENT" and e["write"]["source"] == HOSPITAL
    }
    acknowledged = {rid for a in answers if (rid := _acknowledged(a))}
    row.runs += 1
    row.acknowledged += len(acknowledged)
    row.lost += len(acknowledged - at_source)
    row.unlogged += len(at_source - named)
    row.server_errors += sum(1 for a in answers if a is not None and a[0] >= 500)
    assert len(acknowledged) == 1, answers  # answered, and every retry gave the same object
    assert not _pending(events), _pending(events)


def _verify(world: World) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(world.config),
            "--data-dir",
            str(world.data_dir),
            "audit",
            "verify",
        ],
        cwd=REPO,
        env={**os.environ, **world.env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


QUICK = [("gateway", "mutation.after_write"), ("writer", "audit_writer.committed=pause@1")]
SQLITE_RUNS = (
    [("gateway", s) for s in GATEWAY_STEPS]
    + [("writer", s) for s in GATEWAY_STEPS]
    + [("writer", s) for s in WRITER_IN_BATCH]
)


def _matrix(table: Table, world: World, backend: str, cases) -> None:
    rows: dict[str, Row] = {}
    for i, (target, failpoint) in enumerate(cases):
        case = f"{backend}: kill -9 {'audit writer' if target == 'writer' else 'gateway'}"
        row = rows.get(case) or rows.setdefault(case, table.row(case))
        one_run(world, row, f"crash-{backend}-{i}", failpoint, target)
    _verify(world)
    for row in rows.values():
        assert (row.lost, row.unlogged, row.server_errors) == (0, 0, 0), row


def test_crashes_at_every_step_of_a_mutation_on_sqlite(tmp_path, fault_table):
    world = _seed(tmp_path / "data", None)
    _matrix(fault_table, world, "sqlite", SQLITE_RUNS if FULL else QUICK)


@pytest.mark.skipif(not FULL, reason=LONG_REASON)
def test_crashes_at_every_step_of_a_mutation_on_postgresql(tmp_path, fault_table):
    server = Throwaway()
    if problem := server.missing():
        pytest.skip(f"no throwaway PostgreSQL server: {problem}")
    server.init()
    try:
        world = _seed(tmp_path / "data", server.url)
        _matrix(fault_table, world, "postgresql", [("gateway", s) for s in GATEWAY_STEPS])
    finally:
        server.remove()
