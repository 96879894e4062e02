"""Derived-table tampering: whoever can write the gateway database edits what the auditors
read (``audit_index``, ``audit_writes``, ``audit_alerts``, ``supervision_warnings``) and
leaves the log itself alone.
``medfed audit verify`` recomputes every derived row from the verified leaves and must fail,
naming the first wrong row by table, key and column, on SQLite (through the command) and on
PostgreSQL (through ``verify_log``, whose summary the command prints).

The log comes from a real gateway: a break-glass read (its alert), a prober's denials (a
rule's alert, logged as an event of its own), a patient's consent (a write intent and its
outcome), a security officer closing the break-glass alert (closeAlert), and two rule hits
of fund supervision opened by the event carrying their facts, one of them carried again by a
second event (two scans at once: the first opens it).
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from datetime import datetime
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
from security import warnings
from security.audit import AuditLogConfig, open_audit_log, verify_log
from security.audit.alert_state import warnings_opened_event
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
    warnings: list[str]  # the rule hits' ids
    openings: list[int]  # the events carrying them: both, then the first again


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
    hits = [_hit(1, "DUPLICATE_BILLING", 3), _hit(2, "DOCTOR_VOLUME", 2)]
    ids = await warnings.record(services.gateway_engine, recorder, hits)
    assert await warnings.record(services.gateway_engine, recorder, hits) == []  # known: none
    race = warnings_opened_event(
        [warnings.facts_of(hits[0])], principal=None, purpose="FUND_SUPERVISION", request_id="r"
    )
    await recorder.record(race)
    await recorder.close()
    entries = await raw_entries(fed)
    openings = [
        orjson.loads(e)["index"]
        for e in entries
        if (orjson.loads(e)["event"].get("supervision") or {}).get("action") == "OPEN"
    ]
    assert len(openings) == 2
    first = await warnings.get(services.gateway_engine, ids[0])
    assert first is not None and first["opened_idx"] == openings[0]  # the first event's row
    return World(data_dir, entries, alerts, intent, ids, openings)


def _hit(n: int, rule: str, grade: int) -> warnings.NewWarning:
    return warnings.NewWarning(
        rule=rule,
        grade=grade,
        phase="POST",
        setl_id=f"SD{n}",
        mdtrt_id=None,
        source="bureau-330000",
        person_ref="0" * 32,
        institution_code="H33010600001",
        doctor_code=None,
        insured_region="330106",
        treatment_region="330106",
        settled_at=datetime(2020, 5, n),
        detail=f"hit {n}",
    )


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
    "warnings: rule changed": lambda w: (
        f"UPDATE supervision_warnings SET rule = 'OTHER' WHERE warning_id = '{w.warnings[0]}'",
        f"supervision_warnings row (warning_id={w.warnings[0]})",
        "rule",
    ),
    "warnings: grade lowered": lambda w: (
        f"UPDATE supervision_warnings SET grade = 1 WHERE warning_id = '{w.warnings[0]}'",
        f"supervision_warnings row (warning_id={w.warnings[0]})",
        "grade",
    ),
    "warnings: detail changed": lambda w: (
        f"UPDATE supervision_warnings SET detail = 'fine' WHERE warning_id = '{w.warnings[1]}'",
        f"supervision_warnings row (warning_id={w.warnings[1]})",
        "detail",
    ),
    "warnings: row deleted": lambda w: (
        f"DELETE FROM supervision_warnings WHERE warning_id = '{w.warnings[1]}'",
        f"supervision_warnings row (warning_id={w.warnings[1]}) is missing",
        None,
    ),
    "warnings: opened by the later event": lambda w: (
        f"UPDATE supervision_warnings SET opened_idx = {w.openings[1]} "
        f"WHERE warning_id = '{w.warnings[0]}'",
        f"supervision_warnings row (warning_id={w.warnings[0]})",
        "opened_idx",
    ),
    "warnings: row inserted with no event": lambda w: (
        "INSERT INTO supervision_warnings (warning_id, rule, grade, phase, source, "
        "insured_region, treatment_region, detail, found_at, updated_at, state) "
        "SELECT 'forged', rule, grade, phase, source, insured_region, treatment_region, "
        f"detail, found_at, updated_at, state FROM supervision_warnings "
        f"WHERE warning_id = '{w.warnings[0]}'",
        "supervision_warnings row (warning_id=forged) was opened with no event",
        None,
    ),
    "warnings: row inserted naming an event": lambda w: (
        "INSERT INTO supervision_warnings (warning_id, rule, grade, phase, source, "
        "insured_region, treatment_region, detail, found_at, updated_at, state, opened_idx) "
        "SELECT 'forged', rule, grade, phase, source, insured_region, treatment_region, "
        f"detail, found_at, updated_at, state, opened_idx FROM supervision_warnings "
        f"WHERE warning_id = '{w.warnings[0]}'",
        "supervision_warnings row (warning_id=forged) is not opened by the log",
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
    for table in DERIVED:
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

DERIVED = ("audit_index", "audit_writes", "audit_alerts", "supervision_warnings")


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
