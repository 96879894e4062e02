"""Derived-table tampering: whoever can write the gateway database edits what the auditors
read (``audit_index``, ``audit_writes``, ``audit_alerts``) and leaves the log itself alone.
``medfed audit verify`` recomputes every derived row from the verified leaves and must fail,
naming the first wrong row by table, key and column, on SQLite (through the command) and on
PostgreSQL (through ``verify_log``, whose summary the command prints).

The log comes from a real gateway: a break-glass read (its alert), a prober's denials (a
rule's alert, logged as an event of its own), a patient's consent (a write intent and its
outcome), and a security officer closing the break-glass alert (closeAlert).
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from connectors.sources import SourceSpec
from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from gateway.app import build_services
from gateway.cli import main
from security.audit import AuditLogConfig, open_audit_log, verify_log
from security.audit.signer import VERIFIER_KEY_FILE, parse_verifier_key
from tests.support.adversarial import GRANT
from tests.support.audit import raw_entries
from tests.support.federation import RECENT_VISIT, Federation, gql, make_id_number
from tests.support.postgres import PG_URL, pg_execute, pg_unavailable, run_sync

READ = "query($id: ID!) { person(personId: $id) { name gender } }"
OFFICER = "330000"  # a provincial auditor: every event of this world has a party in 330000


@dataclasses.dataclass(frozen=True)
class World:
    data_dir: Path
    entries: list[bytes]  # the leaves, oldest first
    alerts: dict[str, int]  # rule -> alert id
    intent: int  # the consent's write intent


async def _build(data_dir: Path) -> World:
    from datetime import UTC, datetime, timedelta

    fed = await Federation(data_dir).setup()
    fed.settings = fed.settings.with_tables(audit={"alerts": {"probing_denials": 2}})
    alice = await fed.add_person(make_id_number(seq=101), "王五")
    bob = await fed.add_person(make_id_number(seq=202), "赵六")
    await fed.add_visits(alice, 1, begin=RECENT_VISIT)
    services = build_services(fed.settings)
    app = fed.app(services)
    emergency = fed.token("clinician", "H33010600001", purposes=["TREATMENT", "EMERGENCY"])
    async with fed.client(app, emergency, "EMERGENCY") as c:
        assert (await gql(c, READ, {"id": bob}))["data"]["person"]["name"]
    async with fed.client(app, fed.token("clinician", "H37010200003"), "TREATMENT") as c:
        for _ in range(2):
            await gql(c, READ, {"id": alice})
    patient = fed.token("patient", "330106", person=alice)
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    async with fed.client(app, patient, "PATIENT_ACCESS") as c:
        body = await gql(c, GRANT, {"k": "derived-1", "g": "H37010200003", "until": until})
        assert "errors" not in body, body
    recorder = services.extras["audit"]
    await recorder.settled()
    events = [orjson.loads(e) for e in await raw_entries(fed)]
    alerts = {}
    for entry in events:
        event = entry["event"]
        if event.get("breakGlassOpened"):
            alerts["BREAK_GLASS"] = entry["index"]
        if event.get("kind") == "ALERT":
            alerts[event["alert"]["rule"]] = entry["index"]
    intent = next(e["index"] for e in events if e["event"].get("phase") == "INTENT")
    assert set(alerts) == {"BREAK_GLASS", "PROBING"}, alerts
    async with fed.client(app, fed.token("auditor", OFFICER), "AUDIT") as c:
        body = await gql(
            c,
            'mutation($id: Int!) { closeAlert(alertId: $id, note: "核实") { alert { state } } }',
            {"id": alerts["BREAK_GLASS"]},
        )
        assert body["data"]["closeAlert"]["alert"]["state"] == "RESOLVED", body
    await recorder.close()
    return World(data_dir, await raw_entries(fed), alerts, intent)


@pytest.fixture(scope="module")
def logged_world(tmp_path_factory) -> World:
    data_dir = tmp_path_factory.mktemp("derived") / "data"
    data_dir.mkdir()
    return run_sync(_build(data_dir))


# The command reads the embedded defaults, whatever the environment says.
pytestmark = pytest.mark.usefixtures("embedded_cli")


def _person0(w: World) -> str:
    return orjson.loads(w.entries[0])["event"]["persons"][0]["personId"]


# Each attack: the SQL, and the wrong row (table and key) and column verify must name.
ATTACKS: dict[str, Callable[[World], tuple[str, str | None, str | None]]] = {
    "index: column changed": lambda w: (
        "UPDATE audit_index SET org = 'H99999999999' WHERE idx = 0",
        f"audit_index row (idx=0, person={_person0(w)})",
        "org",
    ),
    "index: scope widened": lambda w: (
        f"UPDATE audit_index SET party_orgs = ',H11010100001,' WHERE idx = {w.alerts['PROBING']}",
        f"audit_index row (idx={w.alerts['PROBING']}, person=None)",
        "party_orgs",
    ),
    "index: row deleted": lambda w: (
        "DELETE FROM audit_index WHERE idx = 0",
        f"audit_index row (idx=0, person={_person0(w)})",
        None,
    ),
    "index: row inserted": lambda w: (
        "INSERT INTO audit_index (idx, at, kind, person, sub, org, role, purpose, outcome, "
        "break_glass, field_classes, denied_unrelated, party_orgs, party_regions) "
        "SELECT idx, at, kind, 'forged', sub, org, role, purpose, outcome, break_glass, "
        "field_classes, denied_unrelated, party_orgs, party_regions FROM audit_index "
        "WHERE idx = 0",
        "audit_index row (idx=0, person=forged)",
        None,
    ),
    "writes: outcome deleted, the write looks pending": lambda w: (
        f"DELETE FROM audit_writes WHERE intent = {w.intent} AND phase = 'OUTCOME'",
        "audit_writes row (idx=",
        None,
    ),
    "writes: column changed": lambda w: (
        f"UPDATE audit_writes SET phase = 'OUTCOME' WHERE idx = {w.intent}",
        f"audit_writes row (idx={w.intent}, intent={w.intent})",
        "phase",
    ),
    "writes: row inserted": lambda w: (
        f"INSERT INTO audit_writes (idx, intent, phase, at) SELECT idx, {w.intent + 100}, "
        f"'OUTCOME', at FROM audit_writes WHERE idx = {w.intent}",
        f"audit_writes row (idx={w.intent}, intent={w.intent + 100})",
        None,
    ),
    "alerts: open alert closed by hand": lambda w: (
        f"UPDATE audit_alerts SET state = 'RESOLVED' WHERE id = {w.alerts['PROBING']}",
        f"audit_alerts row (id={w.alerts['PROBING']})",
        "state",
    ),
    "alerts: closed alert reopened by hand": lambda w: (
        "UPDATE audit_alerts SET state = 'OPEN', state_idx = id, changed_by = NULL, "
        f"changed_org = NULL, changed_at = NULL, note = NULL WHERE id = {w.alerts['BREAK_GLASS']}",
        f"audit_alerts row (id={w.alerts['BREAK_GLASS']})",
        "state",
    ),
    "alerts: closer changed": lambda w: (
        f"UPDATE audit_alerts SET changed_by = 'someone-else' WHERE id = {w.alerts['BREAK_GLASS']}",
        f"audit_alerts row (id={w.alerts['BREAK_GLASS']})",
        "changed_by",
    ),
    "alerts: grade lowered": lambda w: (
        f"UPDATE audit_alerts SET grade = 1 WHERE id = {w.alerts['PROBING']}",
        f"audit_alerts row (id={w.alerts['PROBING']})",
        "grade",
    ),
    "alerts: owner set by hand": lambda w: (
        f"UPDATE audit_alerts SET owner = 'nobody' WHERE id = {w.alerts['BREAK_GLASS']}",
        f"audit_alerts row (id={w.alerts['BREAK_GLASS']})",
        "owner",
    ),
    "alerts: detail changed": lambda w: (
        f"UPDATE audit_alerts SET detail = 'nothing to see' WHERE id = {w.alerts['PROBING']}",
        f"audit_alerts row (id={w.alerts['PROBING']})",
        "detail",
    ),
    "alerts: row deleted": lambda w: (
        f"DELETE FROM audit_alerts WHERE id = {w.alerts['BREAK_GLASS']}",
        f"audit_alerts row (id={w.alerts['BREAK_GLASS']})",
        None,
    ),
    "alerts: row inserted": lambda w: (
        "INSERT INTO audit_alerts (id, idx, at, rule, grade, detail, state, state_idx) "
        "SELECT 1, 1, at, 'PROBING', 2, 'forged', 'OPEN', 1 FROM audit_alerts "
        f"WHERE id = {w.alerts['PROBING']}",
        "audit_alerts row (id=1)",
        None,
    ),
}


def _copy(world: World, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(world.data_dir, target)
    return target


def _cli_verify(data_dir: Path, capsys) -> tuple[int, str]:
    code = main(["--data-dir", str(data_dir), "audit", "verify"])
    out, _ = capsys.readouterr()
    return code, out


def _expect_named(out: str, where: str, column: str | None) -> None:
    lead = next(line for line in out.splitlines() if line.startswith("derived tables damaged"))
    named = f"first wrong row {where}" + (f": column {column} " if column else "")
    assert named in lead, lead


def test_an_untouched_log_verifies_and_lists_every_derived_table(logged_world, tmp_path, capsys):
    code, out = _cli_verify(_copy(logged_world, tmp_path), capsys)
    assert code == 0, out
    line = next(line for line in out.splitlines() if line.startswith("derived tables match"))
    for table in ("audit_index", "audit_writes", "audit_alerts"):
        assert f"{table} (" in line and f"{table} (0 rows)" not in line, line


@pytest.mark.parametrize("attack", ATTACKS)
def test_sqlite_tampering_fails_verify_at_the_edited_row(logged_world, tmp_path, capsys, attack):
    sql, where, column = ATTACKS[attack](logged_world)
    copy = _copy(logged_world, tmp_path)
    with sqlite3.connect(copy / "gateway.db", isolation_level=None) as con:
        assert con.execute(sql).rowcount >= 1, "the attack changed nothing"
    code, out = _cli_verify(copy, capsys)
    assert code == 1, out
    assert out.startswith("audit log intact"), out  # the log itself is untouched
    _expect_named(out, where, column)


# -- PostgreSQL: the same leaves appended to a log of the test's own -----------------------

DERIVED = ("audit_index", "audit_writes", "audit_alerts")


@pytest.fixture(scope="module")
def pg_world(logged_world, tmp_path_factory):
    if (why := pg_unavailable()) is not None:
        pytest.skip(why)
    schema = f"core13_derived_{uuid.uuid4().hex[:8]}"
    spec = SourceSpec(name="gateway", kind="gateway", url=PG_URL, schema=schema)
    keys = tmp_path_factory.mktemp("pg-keys")

    async def build() -> None:
        await migrate.upgrade(spec)
        engine = create_source_engine(spec, poolclass=NullPool)
        log = open_audit_log(engine, keys, AuditLogConfig(checkpoint_every=5))
        for entry in logged_world.entries:
            await log.append(orjson.loads(entry)["event"])
        await log.close()
        async with engine.begin() as conn:  # what each case restores after its attack
            for table in DERIVED:
                await conn.execute(text(f"CREATE TABLE saved_{table} AS SELECT * FROM {table}"))
        await engine.dispose()

    run_sync(build())
    yield spec, parse_verifier_key((keys / VERIFIER_KEY_FILE).read_text())
    run_sync(pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


async def _pg_verify(spec: SourceSpec, key, sql: str | None) -> tuple[bool, str]:
    engine = create_source_engine(spec, poolclass=NullPool)
    try:
        if sql is not None:
            async with engine.begin() as conn:
                assert (await conn.execute(text(sql))).rowcount >= 1, "the attack changed nothing"
        report = await verify_log(engine, key)
        return report.ok, report.summary()
    finally:
        async with engine.begin() as conn:
            for table in DERIVED:
                await conn.execute(text(f"DELETE FROM {table}"))
                await conn.execute(text(f"INSERT INTO {table} SELECT * FROM saved_{table}"))
        await engine.dispose()


def test_postgres_untouched_log_verifies(pg_world):
    ok, summary = run_sync(_pg_verify(*pg_world, None))
    assert ok, summary
    line = next(x for x in summary.splitlines() if x.startswith("derived tables match"))
    for table in DERIVED:
        assert f"{table} (" in line and f"{table} (0 rows)" not in line, line


@pytest.mark.parametrize("attack", ATTACKS)
def test_postgres_tampering_fails_verify_at_the_edited_row(logged_world, pg_world, attack):
    sql, where, column = ATTACKS[attack](logged_world)
    ok, summary = run_sync(_pg_verify(*pg_world, sql))
    assert not ok
    assert summary.startswith("audit log intact"), summary
    _expect_named(summary, where, column)
