"""Reading the audit log is itself audited: who looked at the trail, with what result.

Every read of ``auditEvents``, ``auditProof``, ``auditConsistency``, ``auditCheckpoint``,
``auditAlerts``, ``myAccessLog`` and ``/audit/*`` leaves one QUERY event of class
``audit``, refused attempts included, and none of them copies another person's data or
pseudonym into the log.
"""

from __future__ import annotations

import pytest

from gateway.app import build_services
from tests.support.audit import gateway_sql, logged, raw_entries, verify
from tests.support.federation import RECENT_VISIT, Federation, gql, make_id_number

ALICE_ID = make_id_number(seq=101)
ALICE = "王五"
READ = "query($id: ID!) { person(personId: $id) { name } }"
AUDIT_FIELDS = {
    "auditEvents": "query($p: String) { auditEvents(filter: {person: $p}) { nodes { index "
    "persons { personId } } } }",
    "auditCheckpoint": "{ auditCheckpoint { size note } }",
    "auditProof": "{ auditProof(index: 0) { size path } }",
    "auditConsistency": "{ auditConsistency(fromSize: 1) { path } }",
    "auditAlerts": "{ auditAlerts { nodes { rule } } }",
}


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    fed.settings = fed.settings.with_tables(audit={})
    alice = await fed.add_person(ALICE_ID, ALICE)
    await fed.add_visits(alice, 1, begin=RECENT_VISIT)  # H33010600001 treats Alice
    services = build_services(fed.settings)
    app = fed.app(services)
    # One ordinary access first, so the log holds Alice's data access to be looked up.
    async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        assert (await gql(c, READ, {"id": alice}))["data"]["person"]["name"] == ALICE
    return fed, alice, services, app


def _auditor(fed, app):
    return fed.client(app, fed.token("auditor", "330000"), "AUDIT")


async def _new_events(fed, before: int) -> list[dict]:
    return (await logged(fed))[before:]


@pytest.mark.parametrize("field", sorted(AUDIT_FIELDS))
async def test_each_auditor_read_leaves_one_audit_event(world, field):
    fed, alice, services, app = world
    async with _auditor(fed, app) as c:
        body = await gql(
            c, AUDIT_FIELDS[field], {"p": alice} if "$p" in AUDIT_FIELDS[field] else None
        )
    assert body.get("errors") is None and body["data"][field] is not None
    (event,) = await _new_events(fed, 1)
    assert event["kind"] == "QUERY" and event["outcome"] == "OK"
    assert event["auditLog"] == {"class": "audit", "read": [f"Query.{field}"]}
    assert event["principal"]["role"] == "auditor" and event["purpose"] == "AUDIT"
    assert event["persons"] == []
    assert (await verify(fed, services)).ok


async def test_auditor_reads_copy_no_other_persons_data_into_the_log(world):
    fed, alice, _services, app = world
    async with _auditor(fed, app) as c:
        found = await gql(c, AUDIT_FIELDS["auditEvents"], {"p": alice})
    # The answer names Alice (by pseudonym): that is what the auditor asked for ...
    assert found["data"]["auditEvents"]["nodes"][0]["persons"] == [{"personId": alice}]
    entries = await raw_entries(fed)
    assert len(entries) == 2
    # ... but the event of the auditor's read holds neither her pseudonym nor her name.
    assert alice.encode() not in entries[1]
    assert ALICE.encode() not in entries[1] and ALICE_ID.encode() not in entries[1]


async def test_refused_reads_of_the_log_are_logged_as_denied(world):
    fed, _alice, _services, app = world
    async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        body = await gql(c, AUDIT_FIELDS["auditAlerts"])
        http = await c.get("/audit/checkpoint")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert http.status_code == 403
    graphql, endpoint = await _new_events(fed, 1)
    assert graphql["outcome"] == endpoint["outcome"] == "DENIED"
    assert graphql["auditLog"]["read"] == ["Query.auditAlerts"]
    assert endpoint["auditLog"] == {"class": "audit", "read": ["GET /audit/checkpoint"]}
    assert endpoint["principal"]["role"] == "clinician"
    assert endpoint["request"] == {"method": "GET", "path": "/audit/checkpoint", "status": 403}


async def test_http_audit_endpoints_are_logged_without_their_query(world):
    fed, _alice, services, app = world
    async with _auditor(fed, app) as c:
        assert (await c.get("/audit/checkpoint")).status_code == 200
        assert (await c.get("/audit/proof", params={"index": 0})).status_code == 200
        assert (await c.get("/audit/proof", params={"index": 99})).status_code == 400
    events = await _new_events(fed, 1)
    assert [(e["auditLog"]["read"], e["outcome"]) for e in events] == [
        (["GET /audit/checkpoint"], "OK"),
        (["GET /audit/proof"], "OK"),
        (["GET /audit/proof"], "ERROR"),
    ]
    assert all(e["principal"]["role"] == "auditor" and e["persons"] == [] for e in events)
    assert all("99" not in str(e["request"]) for e in events)
    assert (await verify(fed, services)).ok


async def test_a_patients_own_access_log_read_is_logged_once_and_not_shown_back(world):
    fed, alice, _services, app = world
    async with fed.client(app, fed.token("patient", "330106", person=alice)) as c:
        first = await gql(c, "{ myAccessLog { nodes { index } } }")
        second = await gql(c, "{ myAccessLog { nodes { index } } }")
    # Her reads of her trail are logged, one event each, but are not accesses to her data.
    assert first["data"]["myAccessLog"]["nodes"] == [{"index": 0}]
    assert second["data"]["myAccessLog"]["nodes"] == [{"index": 0}]
    events = await _new_events(fed, 1)
    assert [e["auditLog"]["read"] for e in events] == [["Query.myAccessLog"]] * 2
    assert all(e["principal"]["role"] == "patient" and e["persons"] == [] for e in events)


async def test_reads_of_the_log_are_listed_only_when_asked_for(world):
    fed, _alice, _services, app = world
    query = "query($f: AuditEventFilter) { auditEvents(filter: $f) { nodes { index } } }"
    async with _auditor(fed, app) as c:
        await gql(c, AUDIT_FIELDS["auditCheckpoint"])
        plain = await gql(c, query)
        watched = await gql(c, query, {"f": {"fieldClass": "audit"}})
    # The data accesses are not pushed off the page by the auditors' own reads ...
    assert plain["data"]["auditEvents"]["nodes"] == [{"index": 0}]
    # ... and who read the trail is one filter away.
    assert watched["data"]["auditEvents"]["nodes"] == [{"index": 2}, {"index": 1}]


async def test_http_audit_read_fails_closed_when_it_cannot_be_logged(world):
    fed, _alice, _services, app = world
    async with _auditor(fed, app) as c:
        note = (await c.get("/audit/checkpoint")).text
        await gateway_sql(fed, "DROP TABLE audit_events")
        response = await c.get("/audit/checkpoint")
    assert response.status_code == 503
    assert "audit" in response.text and note.splitlines()[2] not in response.text
