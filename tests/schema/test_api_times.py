"""Every time the API answers carries an offset, and every one the same (+08:00): a source's
record times (stored without an offset, in China Standard Time) and the gateway's own (stored
as UTC, which SQLite returns without its offset) alike."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

from gateway.app import build_services
from tests.support.audit import raw_entries
from tests.support.federation import Federation, gql, make_id_number

CST = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+08:00$")
RECORD = """{ me { cloudRecord {
  visits { nodes { prescriptions { issuedAt reviewedAt } } }
  testResults { nodes { collectedAt reportedAt recognition { validUntil } } } } } }"""
AUDIT = """{ auditEvents(first: 50) { nodes { index time loggedAt } }
  auditAlerts { nodes { rule time } } }"""


def _times(value, key=""):
    """Every value under a key ending in At/Until/time."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _times(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _times(v, key)
    elif value is not None and re.search(r"(At|Until|^time)$", key):
        yield key, value


async def test_record_times_are_china_standard_time_with_the_offset(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(), "张三")
    await fed.add_visits(ref, 1)  # its prescription was issued 2020-01-01 09:00, stored naive
    await fed.add_result(ref, reported_at=datetime(2026, 11, 20, 10))
    async with fed.client(fed.app(), fed.token("patient", "330106", person=ref)) as c:
        body = await gql(c, RECORD)
    assert "errors" not in body
    found = list(_times(body["data"]))
    assert len(found) == 5 and all(CST.match(v) for _, v in found), found
    record = body["data"]["me"]["cloudRecord"]
    rx = record["visits"]["nodes"][0]["prescriptions"][0]
    assert rx["issuedAt"] == "2020-01-01T09:00:00+08:00"  # the clock time kept, offset added
    assert record["testResults"]["nodes"][0]["reportedAt"] == "2026-11-20T10:00:00+08:00"


async def test_gateway_times_are_the_same_instant_at_the_same_offset(data_dir):
    fed = await Federation(data_dir).setup()
    fed.settings = fed.settings.with_tables(audit={"alerts": {"probing_denials": 1}})
    ref = await fed.add_person(make_id_number(), "张三")
    app = fed.app(build_services(fed.settings))
    patient = fed.token("patient", "330106", person=ref)
    until = (date.today() + timedelta(days=30)).isoformat()
    async with fed.client(app, patient) as c:
        body = await gql(
            c,
            'mutation($u: DateTime!) { grantConsent(idempotencyKey: "t-1", input: {grantee: '
            '"H33010600001", dataClasses: [LAB_RESULT], purpose: TREATMENT, validUntil: $u}) '
            "{ consent { validFrom validUntil grantedAt } } }",
            {"u": f"{until}T00:00:00Z"},
        )
        consent = body["data"]["grantConsent"]["consent"]
    # Sent in UTC, answered at +08:00: the same instant.
    assert consent["validUntil"] == f"{until}T08:00:00+08:00"
    assert all(CST.match(v) for v in consent.values()), consent
    async with fed.client(app, fed.token("clinician", "H37010200003"), "TREATMENT") as c:
        await gql(c, "query($p: ID!) { person(personId: $p) { name } }", {"p": ref})  # probing
    async with fed.client(app, fed.token("auditor", "330000"), "AUDIT") as c:
        body = await gql(c, AUDIT)
    assert "errors" not in body, body["errors"]
    events = body["data"]["auditEvents"]["nodes"]
    alerts = body["data"]["auditAlerts"]["nodes"]
    assert alerts and events
    assert all(CST.match(v) for _, v in _times(body["data"])), body["data"]
    logged = {}
    for raw in await raw_entries(fed):
        entry = json.loads(raw)
        logged[entry["index"]] = entry
    for e in events:
        entry = logged[e["index"]]
        assert datetime.fromisoformat(e["time"]) == datetime.fromisoformat(entry["event"]["time"])
        assert datetime.fromisoformat(e["loggedAt"]) == datetime.fromisoformat(entry["logged_at"])
    # The alert's time is its event's (stored UTC, read back from SQLite without the offset):
    # answered as the same instant, not eight hours off.
    fired = max(logged.values(), key=lambda entry: entry["index"])
    alert_time = datetime.fromisoformat(alerts[0]["time"]).astimezone(UTC)
    assert abs(alert_time - datetime.fromisoformat(fired["event"]["time"])) < timedelta(minutes=1)
