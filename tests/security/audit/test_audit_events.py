"""One audit event per request that touches personal data, written before the answer."""

from __future__ import annotations

import hashlib

import pytest

from gateway.app import build_services
from tests.support.audit import fields_of, gateway_sql, logged, raw_entries, verify
from tests.support.federation import Federation, gql, make_id_number

ID_NUMBER = make_id_number()
NAME = "李四"
PHONE = "13912345678"
RECORD = (
    "{ me { name idNumber phone cloudRecord { visits(first: 5) { nodes { visitId "
    "diagnosisText } } } } }"
)


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(ID_NUMBER, NAME, phone=PHONE)
    await fed.add_visits(ref, 2, text="二型糖尿病")
    services = build_services(fed.settings)
    return fed, ref, services, fed.app(services)


async def test_patient_reading_their_record_writes_one_event_without_plain_values(world):
    fed, ref, services, app = world
    async with fed.client(app, fed.token("patient", "330106", person=ref)) as c:
        body = await gql(c, RECORD)
    assert body["data"]["me"]["name"] == NAME
    events = await logged(fed)
    assert len(events) == 1
    event = events[0]
    assert event["kind"] == "QUERY" and event["outcome"] == "OK"
    assert event["principal"]["role"] == "patient" and event["purpose"] == "PATIENT_ACCESS"
    assert [p["personId"] for p in event["persons"]] == [ref]
    assert fields_of(event, ref, "read") >= {
        "Person.name",
        "Person.idNumber",
        "Person.phone",
        "Visit.diagnosisText",
    }
    name = next(f for f in event["persons"][0]["read"] if f["field"] == "Person.name")
    assert (name["class"], name["level"]) == ("identity", 4)
    assert "bureau-330000" in event["sources"]["touched"]
    assert event["operation"]["sha256"] == hashlib.sha256(RECORD.encode()).hexdigest()
    stored = b"".join(await raw_entries(fed))
    for plain in (NAME, ID_NUMBER, PHONE, "二型糖尿病"):
        assert plain.encode() not in stored
    assert (await verify(fed, services)).ok


async def test_variables_are_never_logged(world):
    fed, _ref, _services, app = world
    token = fed.token("clinician", "H33010600001")
    async with fed.client(app, token, "TREATMENT") as c:
        await gql(
            c, "query($n: String!) { person(idNumber: $n) { personId gender } }", {"n": ID_NUMBER}
        )
    stored = b"".join(await raw_entries(fed))
    assert stored and ID_NUMBER.encode() not in stored


async def test_a_denied_field_is_recorded_as_denied(world):
    fed, ref, _services, app = world
    stranger = fed.token("clinician", "H22010200005")  # never treated this person
    async with fed.client(app, stranger, "TREATMENT") as c:
        body = await gql(c, "query($id: ID!) { person(personId: $id) { name } }", {"id": ref})
    assert body["data"]["person"]["name"] is None
    [event] = await logged(fed)
    assert event["outcome"] == "DENIED"
    assert fields_of(event, ref, "denied") == {"Person.name"}
    assert fields_of(event, ref, "read") == set()
    assert event["persons"][0]["relation"] == "NONE"
    assert "FORBIDDEN_FIELD" in event["errors"]


async def test_requests_without_personal_data_are_not_logged(world):
    fed, _ref, _services, app = world
    async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        await gql(c, "{ institutions(first: 3) { nodes { code name } } }")
    assert await logged(fed) == []


async def test_failed_authentication_writes_an_unauthenticated_event(world):
    fed, _ref, services, app = world
    forged = fed.token("patient", "330106", person="0" * 32)[:-6] + "AAAAAA"
    async with fed.client(app, forged) as c:
        response = await c.post("/graphql", json={"query": "{ me { name } }"})
    assert response.status_code == 401
    [event] = await logged(fed)
    assert event["kind"] == "AUTHENTICATION" and event["outcome"] == "UNAUTHENTICATED"
    assert event["request"]["path"] == "/graphql" and event["client"]
    assert event["principal"] is None
    stored = b"".join(await raw_entries(fed))
    assert forged.split(".")[1].encode() not in stored and b"AAAAAA" not in stored
    assert (await verify(fed, services)).ok


async def test_audit_write_failure_answers_503_and_no_data(world):
    fed, ref, _services, app = world
    async with fed.client(app, fed.token("patient", "330106", person=ref)) as c:
        assert (await c.post("/graphql", json={"query": RECORD})).status_code == 200
        await gateway_sql(fed, "DROP TABLE audit_events")
        response = await c.post("/graphql", json={"query": RECORD})
    assert response.status_code == 503
    assert NAME not in response.text and "audit" in response.text


async def test_audit_off_switch_writes_nothing(data_dir, monkeypatch):

    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(ID_NUMBER, NAME)
    fed.settings = fed.settings.with_tables(audit={"enabled": False})
    async with fed.client(fed.app(), fed.token("patient", "330106", person=ref)) as c:
        assert (await gql(c, RECORD))["data"]["me"]["name"] == NAME
    assert await logged(fed) == []


async def test_a_mutation_is_always_logged(world):
    fed, ref, _services, app = world
    async with fed.client(app, fed.token("patient", "330106", person=ref)) as c:
        body = await c.post("/graphql", json={"query": "mutation { __typename }"})
    assert body.status_code == 200
    events = await logged(fed)
    assert [e["kind"] for e in events] == ["MUTATION"]
