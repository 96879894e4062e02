"""Break-glass with accountability: a reason or no access, the reason's text never in plain,
the relation and the reason in the audit event, limits per clinician and per institution (an
issuer minting fresh subs is stopped too), and an alert for every break-glass that only a
security officer within its audit scope can close, with a note, audited and verified.
"""

from __future__ import annotations

import base64
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from gateway.app import build_services
from security.policy.break_glass import GATEWAY_KEY_SOURCE, REASON_CELL
from tests.support.adversarial import DIAGNOSIS, READ, emergency_patients
from tests.support.audit import logged, verify
from tests.support.federation import BREAK_GLASS_REASON, gql

CLINIC = "H33010600001"  # Hangzhou: no relation to the emergency patients (Shandong)
PURPOSES = ["TREATMENT", "EMERGENCY"]
OFFICER = "330000"  # Zhejiang's auditor: the clinic's region, so every alert here is in scope
TEXT = BREAK_GLASS_REASON[1]
ALERTS = """query($s: String) { auditAlerts(state: $s) { nodes { id index rule state principal
    org personId reasonCode reasonText changedBy changedOrg changedAt note stateIndex } } }"""
CLOSE = """mutation($id: Int!, $note: String!) { closeAlert(alertId: $id, note: $note) {
    alert { id state changedBy changedOrg changedAt note stateIndex } } }"""
NOTE = "已电话核实：患者急诊抢救"


@pytest.fixture
async def glass(world):
    """The adversarial world with limits of 2 persons per clinician and 3 per institution."""
    fed, ref, _ = world
    others = await emergency_patients(fed, 5)
    services = build_services(fed.settings)
    policy = dataclasses.replace(
        services.policy, break_glass_persons_per_day=2, break_glass_institution_per_day=3
    )
    services = dataclasses.replace(services, policy=policy, _decider=None)
    return fed, ref, others, services, fed.app(services)


async def _read(fed, app, target: str, *, sub: str | None = None, org: str = CLINIC, **kw):
    token = fed.token("clinician", org, purposes=PURPOSES, sub=sub)
    async with fed.client(app, token, "EMERGENCY", **kw) as c:
        return await c.post("/graphql", json={"query": READ, "variables": {"id": target}})


def _opened(body: dict) -> bool:
    visits = body["data"]["person"]["cloudRecord"]["visits"]["nodes"]
    return bool(visits) and bool(visits[0]["diagnosisText"])


def _plain_in_database(data_dir: Path, text: str) -> bool:
    raw = text.encode("utf-8")
    files = [p for p in data_dir.rglob("gateway.db*") if p.is_file()]
    assert files, "no gateway database found"
    return any(raw in p.read_bytes() for p in files)


# -- the reason ----------------------------------------------------------------------------------
async def test_emergency_without_a_reason_is_refused_and_audited(world):
    fed, ref, app = world
    response = await _read(fed, app, ref, reason=None)
    assert response.status_code == 400 and DIAGNOSIS not in response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BREAK_GLASS_REASON_REQUIRED"
    [event] = await logged(fed)
    assert event["kind"] == "AUTHENTICATION" and event["errors"] == ["BREAK_GLASS_REASON_REQUIRED"]
    assert event["requestId"] == response.headers["x-request-id"]
    # Positive control: the same read with a reason breaks the glass.
    response = await _read(fed, app, ref)
    assert response.status_code == 200 and _opened(response.json())


async def test_the_event_records_relation_and_reason_and_the_text_only_encrypted(world):
    fed, ref, app = world
    response = await _read(fed, app, ref)
    assert _opened(response.json())
    event = (await logged(fed))[-1]
    [person] = [p for p in event["persons"] if p["personId"] == ref]
    assert person["relation"] == "BREAK_GLASS"
    opened = event["breakGlassOpened"]
    assert opened["persons"] == [ref] and opened["reason"]["code"] == BREAK_GLASS_REASON[0]
    sealed = base64.b64decode(opened["reason"]["text"])
    table, column = REASON_CELL
    # Positive control: what is stored is the text, under the gateway's own key.
    assert (
        fed.cipher.decrypt(
            sealed,
            source=GATEWAY_KEY_SOURCE,
            table=table,
            column=column,
            row_key=event["requestId"],
        )
        == TEXT
    )
    assert not _plain_in_database(fed.data_dir, TEXT)
    assert TEXT not in str(await logged(fed))
    with sqlite3.connect(fed.data_dir / "gateway.db") as con:
        code, text = con.execute(
            "SELECT reason_code, reason_text FROM break_glass_grants WHERE person_ref = ?", (ref,)
        ).fetchone()
    assert code == BREAK_GLASS_REASON[0] and bytes(text) == sealed


# -- limits ---------------------------------------------------------------------------------------
async def test_the_clinician_limit_holds_at_its_boundary(glass):
    fed, _, others, _, app = glass
    first, second, third = others[:3]
    assert _opened((await _read(fed, app, first)).json())
    assert _opened((await _read(fed, app, second)).json())  # the second of two: still granted
    again = (await _read(fed, app, first)).json()  # a person already granted costs no slot
    assert _opened(again)
    refused = (await _read(fed, app, third)).json()
    assert not _opened(refused)
    notice = refused["extensions"]["breakGlass"]
    assert notice["refused"] == [third]
    assert notice["refusedBecause"] == "BREAK_GLASS_CLINICIAN_LIMIT"
    # Positive control: another clinician of the institution may still break the glass.
    assert _opened((await _read(fed, app, third, sub="another-doctor")).json())


async def test_the_institution_limit_stops_an_issuer_minting_fresh_subs(glass):
    fed, _, others, _, app = glass
    for n, target in enumerate(others[:3]):  # three fresh subs, one person each: 3 of 3
        assert _opened((await _read(fed, app, target, sub=f"fresh-{n}")).json())
    refused = (await _read(fed, app, others[3], sub="fresh-3")).json()
    assert not _opened(refused)
    assert refused["extensions"]["breakGlass"]["refusedBecause"] == (
        "BREAK_GLASS_INSTITUTION_LIMIT"
    )
    # Positive control: a clinician of another institution is not held by this one's limit.
    assert _opened((await _read(fed, app, others[3], org="H33010600002")).json())


# -- the alert --------------------------------------------------------------------------------
def _auditor(fed, app, org: str = OFFICER):
    return fed.client(app, fed.token("auditor", org), "AUDIT")


async def test_every_break_glass_opens_an_alert_with_its_reason(glass):
    fed, _, others, _, app = glass
    await _read(fed, app, others[0])
    await _read(fed, app, others[0])  # the same grant: no second alert
    await _read(fed, app, others[1])
    async with _auditor(fed, app) as c:
        alerts = (await gql(c, ALERTS, {"s": "OPEN"}))["data"]["auditAlerts"]["nodes"]
    assert [(a["rule"], a["personId"]) for a in alerts] == [
        ("BREAK_GLASS", others[1]),
        ("BREAK_GLASS", others[0]),
    ]
    for alert in alerts:
        assert alert["state"] == "OPEN" and alert["stateIndex"] == alert["id"]
        assert alert["reasonCode"] == BREAK_GLASS_REASON[0] and alert["reasonText"] == TEXT
        assert alert["org"] == CLINIC and alert["changedBy"] is None


async def _one_alert(fed, app) -> int:
    others = await emergency_patients(fed, 1)
    assert _opened((await _read(fed, app, others[0])).json())
    async with _auditor(fed, app) as c:
        [alert] = (await gql(c, ALERTS))["data"]["auditAlerts"]["nodes"]
    return alert["id"]


async def test_an_officer_in_scope_closes_the_alert_with_a_note_and_it_is_audited(world):
    fed, _, app = world
    alert = await _one_alert(fed, app)
    async with _auditor(fed, app) as c:
        body = await gql(c, CLOSE, {"id": alert, "note": NOTE})
        closed = body["data"]["closeAlert"]["alert"]
        assert closed["state"] == "RESOLVED" and closed["note"] == NOTE
        assert closed["changedBy"] == f"demo-auditor-{OFFICER}" and closed["changedOrg"] == OFFICER
        assert closed["changedAt"] and closed["stateIndex"] > alert
        again = await gql(c, CLOSE, {"id": alert, "note": NOTE})
        listed = (await gql(c, ALERTS, {"s": "CLOSED"}))["data"]["auditAlerts"]["nodes"]
    assert again["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert again["errors"][0]["extensions"]["problems"][0]["path"] == ["alertId"]
    assert [a["id"] for a in listed] == [alert]
    change = next(e for e in await logged(fed) if e.get("phase") == "CHANGE")
    assert change["kind"] == "ALERT" and change["alert"]["id"] == alert
    assert change["alert"]["state"] == "RESOLVED" and change["principal"]["org"] == OFFICER
    assert not _plain_in_database(fed.data_dir, NOTE)
    report = await verify(fed, None)
    assert report.ok, report.summary()
    assert "audit_alerts (1 rows)" in report.summary()


@pytest.mark.parametrize(
    "role,org,purpose",
    [
        ("auditor", "220000", "AUDIT"),  # Jilin's auditor: the alert is not in its scope
        ("auditor", "H37010200003", "AUDIT"),  # a hospital's auditor, not a party
        ("clinician", CLINIC, "TREATMENT"),  # not a security officer
    ],
    ids=["other region", "other institution", "not an auditor"],
)
async def test_no_one_else_closes_the_alert(world, role, org, purpose):
    fed, _, app = world
    alert = await _one_alert(fed, app)
    async with fed.client(app, fed.token(role, org), purpose) as c:
        body = await gql(c, CLOSE, {"id": alert, "note": NOTE})
        missing = await gql(c, CLOSE, {"id": alert + 1000, "note": NOTE})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    if role == "auditor":  # an alert out of scope and one that does not exist look the same
        assert body["errors"][0]["message"].replace(str(alert), "N") == missing["errors"][0][
            "message"
        ].replace(str(alert + 1000), "N")
    async with _auditor(fed, app) as c:
        [still] = (await gql(c, ALERTS))["data"]["auditAlerts"]["nodes"]
    assert still["state"] == "OPEN"  # positive control below: the officer in scope can
    async with _auditor(fed, app) as c:
        assert "errors" not in await gql(c, CLOSE, {"id": alert, "note": NOTE})


async def test_a_note_is_required(world):
    fed, _, app = world
    alert = await _one_alert(fed, app)
    async with _auditor(fed, app) as c:
        blank = await gql(c, CLOSE, {"id": alert, "note": "  "})
        long = await gql(c, CLOSE, {"id": alert, "note": "x" * 2001})
        limit = await gql(c, CLOSE, {"id": alert, "note": "x" * 2000})  # the boundary: accepted
    for body in (blank, long):
        assert body["errors"][0]["extensions"]["problems"][0]["path"] == ["note"]
    assert limit["data"]["closeAlert"]["alert"]["state"] == "RESOLVED"


async def test_verify_catches_an_alert_state_edited_after_closing(world):
    fed, _, app = world
    alert = await _one_alert(fed, app)
    async with _auditor(fed, app) as c:
        assert "errors" not in await gql(c, CLOSE, {"id": alert, "note": NOTE})
    assert (await verify(fed, None)).ok
    with sqlite3.connect(fed.data_dir / "gateway.db", isolation_level=None) as con:
        con.execute("UPDATE audit_alerts SET state = 'OPEN' WHERE id = ?", (alert,))
    report = await verify(fed, None)
    assert not report.ok
    assert f"first wrong row audit_alerts row (id={alert}): column state" in report.summary()
