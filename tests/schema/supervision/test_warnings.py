"""Risk warnings with graded handling: supervisors list and filter the warnings of their
region, assign, acknowledge and close them with notes; each change is in the audit log that
`medfed audit verify` proves; confirmed violations make credit records."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime

import pytest
from sqlalchemy import update

from connectors.sql.engine import create_source_engine
from gateway.app import build_services
from security import warnings as store
from tests.support.audit import logged, open_warnings, raw_entries, verify
from tests.support.federation import Federation
from tests.support.mutations import code, only_error, run

LIST = """query($f: WarningFilter, $after: String) { supervisionWarnings(filter: $f, first: 2,
  after: $after) { nodes { warningId rule grade state owner institutionCode insuredRegion
  notes { action fromState toState owner note by } } pageInfo { hasNextPage endCursor } } }"""
HANDLE = """mutation($k: String!, $i: HandleWarningInput!) {
  handleWarning(idempotencyKey: $k, input: $i) { replayed warning {
  warningId state owner stateIndex notes { action fromState toState owner note by } } } }"""
CREDIT = """query($s: CreditSubject!) { creditRecords(subject: $s, fromMonth: "2020-01",
  toMonth: "2020-12") { subject confirmed falsePositives pending points level } }"""


def warning(n: int, region: str, rule="DUPLICATE_BILLING", grade=3, inst="H33010600001"):
    return store.NewWarning(
        rule=rule,
        grade=grade,
        phase="POST",
        setl_id=f"S{n}",
        mdtrt_id=None,
        source="bureau-330000",
        person_ref="0" * 32,
        institution_code=inst,
        doctor_code=f"D{inst}001",
        insured_region=region,
        treatment_region=region,
        settled_at=datetime(2020, 5, n),
        detail="test",
    )


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    fed.services = build_services(fed.settings)
    fed.app_ = fed.app(fed.services)
    fed.ids = await open_warnings(
        fed,
        [
            warning(1, "330106"),
            warning(2, "330106", rule="SIMULTANEOUS_CARE", grade=3),
            warning(3, "330106", rule="DOCTOR_VOLUME", grade=2, inst="H33020300002"),
            warning(4, "370102", inst="H37010200003"),
        ],
        fed.services,
    )
    return fed


async def ask(
    fed, query, variables, org="330000", role="insurance_agency", purpose="FUND_SUPERVISION"
):
    return await run(fed, fed.app_, fed.token(role, org), purpose, query, variables)


async def handle(fed, wid, action, note="checked", owner=None, org="330000", key=None):
    data = {"warningId": wid, "action": action, "note": note}
    if owner:
        data["owner"] = owner
    key = key or secrets.token_hex(8)
    body = await ask(fed, HANDLE, {"k": key, "i": data}, org=org)
    if (body.get("data") or {}).get("handleWarning"):
        # the tests read the warning; `replayed` is asserted where it matters
        body["data"]["handleWarning"] = {
            **body["data"]["handleWarning"]["warning"],
            "replayed": body["data"]["handleWarning"]["replayed"],
        }
    return body


async def test_a_supervisor_lists_and_filters_the_warnings_of_their_region(fed):
    body = await ask(fed, LIST, {})
    page = body["data"]["supervisionWarnings"]
    assert len(page["nodes"]) == 2 and page["pageInfo"]["hasNextPage"]
    rest = await ask(fed, LIST, {"after": page["pageInfo"]["endCursor"]})
    nodes = page["nodes"] + rest["data"]["supervisionWarnings"]["nodes"]
    assert {n["insuredRegion"] for n in nodes} == {"330106"} and len(nodes) == 3
    only = await ask(fed, LIST, {"f": {"rule": "DOCTOR_VOLUME"}})
    assert [n["institutionCode"] for n in only["data"]["supervisionWarnings"]["nodes"]] == [
        "H33020300002"
    ]
    graded = await ask(fed, LIST, {"f": {"minGrade": 3}})
    assert len(graded["data"]["supervisionWarnings"]["nodes"]) == 2
    shandong = await ask(fed, LIST, {}, org="370000")
    assert [n["insuredRegion"] for n in shandong["data"]["supervisionWarnings"]["nodes"]] == [
        "370102"
    ]
    assert code(await ask(fed, LIST, {"f": {"region": "370102"}})) == "FORBIDDEN"
    patient = await ask(fed, LIST, {}, role="clinician", org="H33010600001", purpose="TREATMENT")
    assert code(patient) == "FORBIDDEN"


async def test_the_lifecycle_with_notes_each_change_audited(fed):
    wid = fed.ids[0]
    body = await handle(fed, wid, "ASSIGN", "to the inspection team", owner="inspector-7")
    answer = body["data"]["handleWarning"]
    assert (answer["state"], answer["owner"]) == ("OPEN", "inspector-7")
    body = await handle(fed, wid, "ACKNOWLEDGE", "looking into it")
    assert body["data"]["handleWarning"]["state"] == "ACKNOWLEDGED"
    body = await handle(fed, wid, "RESOLVE", "confirmed: billed twice, recovered")
    answer = body["data"]["handleWarning"]
    assert answer["state"] == "RESOLVED" and answer["owner"] == "inspector-7"
    assert [(n["action"], n["fromState"], n["toState"]) for n in answer["notes"]] == [
        ("ASSIGN", "OPEN", "OPEN"),
        ("ACKNOWLEDGE", "OPEN", "ACKNOWLEDGED"),
        ("RESOLVE", "ACKNOWLEDGED", "RESOLVED"),
    ]
    closed = await handle(fed, wid, "FALSE_POSITIVE", "changed my mind")
    assert code(closed) == "BAD_USER_INPUT" and "RESOLVED" in only_error(closed)["message"]
    # OPEN may be closed directly as a false positive
    body = await handle(fed, fed.ids[1], "FALSE_POSITIVE", "a transfer between hospitals")
    assert body["data"]["handleWarning"]["state"] == "FALSE_POSITIVE"
    changes = [
        (e["principal"]["org"], e["warning"])
        for e in await logged(fed)
        if e.get("kind") == "ALERT" and e.get("phase") == "CHANGE"
    ]
    assert [(org, c["id"], c["action"], c["from"], c["state"]) for org, c in changes] == [
        ("330000", wid, "ASSIGN", "OPEN", "OPEN"),
        ("330000", wid, "ACKNOWLEDGE", "OPEN", "ACKNOWLEDGED"),
        ("330000", wid, "RESOLVE", "ACKNOWLEDGED", "RESOLVED"),
        ("330000", fed.ids[1], "FALSE_POSITIVE", "OPEN", "FALSE_POSITIVE"),
    ]
    # the notes are in the log only as ciphertext
    entries = b"".join(await raw_entries(fed))
    assert b"confirmed: billed twice" not in entries and b"inspection team" not in entries
    report = await verify(fed, fed.services)
    assert report.ok, report


async def test_outside_the_region_is_the_same_as_unknown(fed):
    outside = await handle(fed, fed.ids[3], "ACKNOWLEDGE")  # Shandong's warning
    unknown = await handle(fed, "f" * 32, "ACKNOWLEDGE")
    assert code(outside) == code(unknown) == "NOT_FOUND"
    assert only_error(outside)["message"] == only_error(unknown)["message"]
    # positive control: Shandong's own agency handles it
    body = await handle(fed, fed.ids[3], "ACKNOWLEDGE", org="370000")
    assert body["data"]["handleWarning"]["state"] == "ACKNOWLEDGED"
    bad = await handle(fed, fed.ids[0], "ASSIGN", note=" ")
    assert code(bad) == "BAD_USER_INPUT"


async def test_confirmed_violations_build_credit_records(fed):
    await handle(fed, fed.ids[0], "RESOLVE", "confirmed")
    await handle(fed, fed.ids[1], "RESOLVE", "confirmed")
    await handle(fed, fed.ids[2], "FALSE_POSITIVE", "a busy clinic day, checked")
    body = await ask(fed, CREDIT, {"s": "INSTITUTION"})
    assert body["data"]["creditRecords"] == [
        {
            "subject": "H33010600001",
            "confirmed": 2,
            "falsePositives": 0,
            "pending": 0,
            "points": 6,
            "level": "B",
        },
        {
            "subject": "H33020300002",
            "confirmed": 0,
            "falsePositives": 1,
            "pending": 0,
            "points": 0,
            "level": "A",
        },
    ]
    doctors = await ask(fed, CREDIT, {"s": "DOCTOR"})
    assert doctors["data"]["creditRecords"][0]["subject"] == "DH33010600001001"
    shandong = await ask(fed, CREDIT, {"s": "INSTITUTION"}, org="370000")
    assert shandong["data"]["creditRecords"] == [
        {
            "subject": "H37010200003",
            "confirmed": 0,
            "falsePositives": 0,
            "pending": 1,
            "points": 0,
            "level": "A",
        }
    ]


async def test_a_retry_with_the_same_key_changes_nothing(fed):
    wid = fed.ids[0]
    first = await handle(fed, wid, "ACKNOWLEDGE", "looking", key="retry-key-1")
    again = await handle(fed, wid, "ACKNOWLEDGE", "looking", key="retry-key-1")
    assert first["data"]["handleWarning"]["replayed"] is False
    assert again["data"]["handleWarning"]["replayed"] is True
    assert len(again["data"]["handleWarning"]["notes"]) == 1
    # the same key for another change is refused; a new key is a new change
    other = await handle(fed, wid, "RESOLVE", "done", key="retry-key-1")
    assert code(other) == "IDEMPOTENCY_KEY_REUSED"
    done = await handle(fed, wid, "RESOLVE", "done", key="retry-key-2")
    assert done["data"]["handleWarning"]["state"] == "RESOLVED"
    assert len(done["data"]["handleWarning"]["notes"]) == 2
    # a bad key is a problem of the input, nothing changes
    bad = await handle(fed, fed.ids[1], "ACKNOWLEDGE", key="not a key!")
    assert code(bad) == "BAD_USER_INPUT"
    listed = await ask(fed, LIST, {"f": {"rule": "SIMULTANEOUS_CARE"}})
    assert listed["data"]["supervisionWarnings"]["nodes"][0]["state"] == "OPEN"


async def test_being_the_owner_grants_nothing(fed):
    """An owner is a name a supervisor writes; who may handle comes from the token's role,
    purpose and region as its issuer asserted them."""
    shandong = fed.ids[3]
    # Zhejiang names itself the owner of... nothing: Shandong's warning is not in its region
    assert code(await handle(fed, shandong, "ASSIGN", owner="330000")) == "NOT_FOUND"
    # Shandong assigns its warning to a Zhejiang officer: the officer still cannot touch it
    body = await handle(fed, shandong, "ASSIGN", owner="330000", org="370000")
    assert body["data"]["handleWarning"]["owner"] == "330000"
    assert code(await handle(fed, shandong, "RESOLVE", org="330000")) == "NOT_FOUND"
    # nor may a clinician who is named owner of a warning on their own hospital
    zhejiang = fed.ids[0]
    await handle(fed, zhejiang, "ASSIGN", owner="H33010600001")
    clinician = await run(
        fed,
        fed.app_,
        fed.token("clinician", "H33010600001"),
        "TREATMENT",
        HANDLE,
        {"k": secrets.token_hex(8), "i": {"warningId": zhejiang, "action": "RESOLVE", "note": "x"}},
    )
    assert code(clinician) == "FORBIDDEN"
    # positive control: Shandong's own agency closes it
    body = await handle(fed, shandong, "RESOLVE", org="370000")
    assert body["data"]["handleWarning"]["state"] == "RESOLVED"


async def test_verify_finds_a_state_changed_beside_the_log(fed):
    await handle(fed, fed.ids[0], "ACKNOWLEDGE", "looking")
    await fed.services.extras["audit"].close()
    engine = create_source_engine(fed.settings.gateway_spec)
    try:
        async with engine.begin() as conn:
            # one warning closed behind the log's back, one never-changed one given an owner
            await conn.execute(
                update(store.WARNINGS)
                .where(store.WARNINGS.c.warning_id == fed.ids[0])
                .values(state="FALSE_POSITIVE")
            )
            await conn.execute(
                update(store.WARNINGS)
                .where(store.WARNINGS.c.warning_id == fed.ids[1])
                .values(owner="someone")
            )
    finally:
        await engine.dispose()
    report = await verify(fed, None)
    assert not report.ok
    text = str(report)
    assert f"warning_id={fed.ids[0]}" in text and f"warning_id={fed.ids[1]}" in text


async def test_two_handlers_at_once_one_wins(fed):
    """Closing one warning twice at the same moment (RESOLVE and FALSE_POSITIVE): the state
    checked is the state changed, so one closes it and the other is told it is closed."""
    wid = fed.ids[0]
    answers = await asyncio.gather(
        handle(fed, wid, "RESOLVE", "confirmed"), handle(fed, wid, "FALSE_POSITIVE", "not")
    )
    won = [a for a in answers if "errors" not in a]
    lost = [a for a in answers if "errors" in a]
    assert len(won) == 1 and len(lost) == 1
    assert code(lost[0]) == "BAD_USER_INPUT" and "closed" in only_error(lost[0])["message"]
    listed = await ask(fed, LIST, {"f": {"rule": "DUPLICATE_BILLING"}})
    [node] = listed["data"]["supervisionWarnings"]["nodes"]
    assert node["state"] == won[0]["data"]["handleWarning"]["state"]
    assert len(node["notes"]) == 1


async def test_two_workers_at_once_one_wins(fed):
    """Two workers of one gateway (each its own engine, audit log writer and process lock)
    close one warning at the same moment: the database's lock makes one win, and the log
    holds one change."""
    other = build_services(fed.settings)
    second = fed.app(other)
    wid = fed.ids[0]

    async def close(app, action: str):
        data = {"warningId": wid, "action": action, "note": "at once"}
        token = fed.token("insurance_agency", "330000")
        variables = {"k": secrets.token_hex(8), "i": data}
        return await run(fed, app, token, "FUND_SUPERVISION", HANDLE, variables)

    answers = await asyncio.gather(close(fed.app_, "RESOLVE"), close(second, "FALSE_POSITIVE"))
    won = [a for a in answers if "errors" not in a]
    lost = [a for a in answers if "errors" in a]
    assert len(won) == 1 and len(lost) == 1, answers
    assert code(lost[0]) == "BAD_USER_INPUT" and "closed" in only_error(lost[0])["message"]
    changes = [
        e["warning"]
        for e in await logged(fed)
        if e.get("kind") == "ALERT" and e.get("phase") == "CHANGE"
    ]
    assert [(c["id"], c["from"]) for c in changes] == [(wid, "OPEN")]
    await other.extras["audit"].close()
    report = await verify(fed, fed.services)
    assert report.ok, str(report)


async def test_a_security_officer_sees_the_regions_warnings_and_cannot_handle_them(fed):
    """The console shows the risk warnings beside the alerts: an auditor of a region lists its
    region's warnings ([[supervision]] auditor, AUDIT, warnings) but handles none of them."""
    mine = await ask(fed, LIST, {}, role="auditor", purpose="AUDIT")
    rest = await ask(
        fed,
        LIST,
        {"after": mine["data"]["supervisionWarnings"]["pageInfo"]["endCursor"]},
        role="auditor",
        purpose="AUDIT",
    )
    nodes = (
        mine["data"]["supervisionWarnings"]["nodes"] + rest["data"]["supervisionWarnings"]["nodes"]
    )
    assert {n["insuredRegion"] for n in nodes} == {"330106"} and len(nodes) == 3
    data = {"warningId": nodes[0]["warningId"], "action": "ACKNOWLEDGE", "note": "seen"}
    refused = await ask(fed, HANDLE, {"k": "officer-1", "i": data}, role="auditor", purpose="AUDIT")
    assert code(refused) == "FORBIDDEN"
    # Positive control: the region's fund supervisor handles it.
    assert (await handle(fed, nodes[0]["warningId"], "ACKNOWLEDGE"))["data"]["handleWarning"][
        "state"
    ] == "ACKNOWLEDGED"
