"""Adversarial reads: every role, with no relation to a person, tries every level-3+ field of
that person through aliases, fragments, inline fragments, deep nesting, top-level lists,
variable and directive tricks, several operations, batched arrays and ``_entities``; the
response bytes must contain none of the person's plain values. The same module checks that
each legitimate path still returns the data, that consent takes effect on the next request
and revocation at once, that break-glass is flagged and limited, and that the schema does
not expose itself outside dev mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from security.consent import ConsentStore, DataClass
from security.identity.roles import Purpose
from tests.support.adversarial import (
    ADDRESS,
    ATTACKERS,
    ATTACKS,
    DIAGNOSIS,
    FINDINGS,
    GRANT,
    NAME,
    PHONE,
    READ,
    REVOKE,
    VICTIM_ID,
    assert_no_leak,
    emergency_patients,
    leaked,
    post,
    secrets,
)
from tests.support.federation import Federation, gql, make_id_number


@pytest.mark.parametrize("role,org,purposes", ATTACKERS, ids=[a[0] for a in ATTACKERS])
async def test_no_role_without_a_relation_reads_any_plain_value(world, role, org, purposes):
    fed, ref, app = world
    person = fed.indexer.person_ref(make_id_number(seq=1)) if role == "patient" else None
    for name, (query, extra) in ATTACKS.items():
        variables = {"id": ref, "n": VICTIM_ID, **extra}
        operation = "Attack" if name == "two operations" else None
        response = await post(
            fed, app, role, org, purposes, query, variables, person=person, operation=operation
        )
        assert_no_leak(response, f"{role} via {name}")


async def test_denials_are_forbidden_field_errors_at_their_paths_and_the_rest_answers(world):
    fed, ref, app = world
    response = await post(
        fed,
        app,
        "insurance_agency",
        "370100",
        None,
        """query($id: ID!) { person(personId: $id) { personId name
                          cloudRecord { visits { nodes { visitId diagnosisText } } } } }""",
        {"id": ref},
        purpose="FUND_SUPERVISION",
    )
    body = response.json()
    person = body["data"]["person"]
    assert person["personId"] == ref and person["name"] == "欧***"
    visits = person["cloudRecord"]["visits"]["nodes"]
    assert len(visits) == 3 and all(v["diagnosisText"] is None for v in visits)
    denied = [e for e in body["errors"] if e["extensions"]["code"] == "FORBIDDEN_FIELD"]
    assert {tuple(e["path"][-1:]) for e in denied} == {("diagnosisText",)}
    assert all(e["extensions"]["reason"] for e in denied)
    assert_no_leak(response, "agency", masked_due=True)  # the region's insured, masked


async def test_a_batched_array_body_is_refused_cleanly(world):
    fed, ref, app = world
    token = fed.token("clinician", "H33010600001")
    batch = [
        {"query": "{ institutions { nodes { code } } }"},
        {
            "query": "query($id: ID!) { person(personId: $id) { name idNumber } }",
            "variables": {"id": ref},
        },
    ]
    async with fed.client(app, token, "TREATMENT") as c:
        response = await c.post("/graphql", json=batch)
    assert response.status_code == 400
    assert "Batching is not enabled" in response.text
    assert_no_leak(response, "batched array", status=400)


async def test_entities_representations_pass_the_same_checks(world):
    fed, ref, app = world
    from schema.build import build_schema

    if "_entities" not in build_schema(dev=True)._schema.query_type.fields:
        pytest.skip(
            "the schema has no _entities yet (federation subgraphs come in their own "
            "issue); this test checks it once it does"
        )
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Person { name idNumber phone address } } }"""
    response = await post(
        fed,
        app,
        "clinician",
        "H33010600001",
        None,
        query,
        {"r": [{"__typename": "Person", "personId": ref}]},
        purpose="TREATMENT",
    )
    assert_no_leak(response, "_entities")


# -- legitimate paths still answer ----------------------------------------------------------------
async def test_the_patient_reads_every_value_of_their_own_record(world):
    """The positive control of every attack but the regional one (patients list no region):
    the same queries from the victim return the victim's values."""
    fed, ref, app = world
    for name, (query, extra) in ATTACKS.items():
        if name == "regional lists":
            continue
        response = await post(
            fed,
            app,
            "patient",
            "370102",
            None,
            query,
            {"id": ref, "n": VICTIM_ID, **extra},
            person=ref,
            operation="Attack" if name == "two operations" else None,
        )
        body = response.json()
        assert "errors" not in body, (name, body.get("errors"))
        raw = response.content.decode()
        assert leaked(raw, NAME), name
        assert name != "by id number" or leaked(raw, VICTIM_ID), name
    response = await post(
        fed, app, "patient", "370102", None, ATTACKS["plain"][0], {"id": ref}, person=ref
    )
    raw = response.content.decode()
    for value in secrets():
        assert leaked(raw, value), value


async def test_the_treating_hospital_reads_the_clinical_record_identity_masked(world):
    fed, ref, app = world
    response = await post(
        fed,
        app,
        "clinician",
        "H37010200003",
        None,
        ATTACKS["plain"][0],
        {"id": ref},
        purpose="TREATMENT",
    )
    person = response.json()["data"]["person"]
    assert person["name"] == NAME
    assert person["idNumber"] == VICTIM_ID[:3] + "*" * 11 + VICTIM_ID[-4:]
    assert person["phone"] == "139****4321" and person["birthDate"].endswith("-01-01")
    record = person["cloudRecord"]
    assert {e["node"]["diagnosisText"] for e in record["visits"]["edges"]} == {DIAGNOSIS}
    assert record["testResults"]["nodes"][0]["findings"] == FINDINGS
    assert record["settlements"]["nodes"] == []  # money is not the hospital's business
    assert not leaked(response.text, PHONE) and not leaked(response.text, ADDRESS)


async def test_the_pharmacy_sees_the_prescriptions_circulated_to_it_only(world):
    fed, ref, app = world
    query = """query($id: ID!) { person(personId: $id) { name cloudRecord {
        prescriptions { nodes { prescriptionId circulatedTo items { drugName } } }
        visits { nodes { visitId } } } } }"""
    mine = (await post(fed, app, "pharmacist", "P33010600101", None, query, {"id": ref})).json()
    other = (await post(fed, app, "pharmacist", "P37010200102", None, query, {"id": ref})).json()
    nodes = mine["data"]["person"]["cloudRecord"]["prescriptions"]["nodes"]
    assert len(nodes) == 3 and {n["circulatedTo"] for n in nodes} == {"P33010600101"}
    assert nodes[0]["items"][0]["drugName"] == "依那普利片"
    assert mine["data"]["person"]["cloudRecord"]["visits"]["nodes"] == []
    assert mine["data"]["person"]["name"] is None
    assert other["data"]["person"]["cloudRecord"]["prescriptions"]["nodes"] == []


async def test_the_regional_lists_attack_answers_the_national_settlement_centre(world):
    """The positive control of the "regional lists" attack: the same query from the national
    platform reads the victim's filing (name masked) and settlements."""
    fed, ref, app = world
    query, _ = ATTACKS["regional lists"]
    response = await post(fed, app, "settlement_center", "100000", None, query, {})
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["filings"]["nodes"] == [{"name": "欧***"}]
    assert body["data"]["settlements"]["nodes"] == [{"total": "1000.00", "personId": ref}]
    assert body["data"]["treated"]["nodes"] == [{"total": "1000.00"}]
    assert not leaked(response.text, NAME)


async def test_agencies_and_the_settlement_centre_read_money_of_their_region(world):
    fed, ref, app = world
    query = """query($id: ID!) { settlements(filter: {personId: $id}) { nodes { total
        insuredRegion treatmentRegion } } person(personId: $id) { cloudRecord {
        testResults { nodes { findings } } } } }"""
    agency = (
        await post(
            fed, app, "insurance_agency", "370100", None, query, {"id": ref}, purpose="SETTLEMENT"
        )
    ).json()
    assert [n["total"] for n in agency["data"]["settlements"]["nodes"]] == ["1000.00"]
    # Results are not the agency's: their rows are not even listed.
    assert agency["data"]["person"]["cloudRecord"]["testResults"]["nodes"] == []
    centre = (await post(fed, app, "settlement_center", "100000", None, query, {"id": ref})).json()
    assert [n["treatmentRegion"] for n in centre["data"]["settlements"]["nodes"]] == ["220102"]
    elsewhere = (
        await post(
            fed, app, "insurance_agency", "330100", None, query, {"id": ref}, purpose="SETTLEMENT"
        )
    ).json()
    assert elsewhere["data"]["settlements"]["nodes"] == []


# -- consent -------------------------------------------------------------------------------------
async def test_consent_applies_on_the_next_request_and_revocation_wins_at_once(world):
    fed, ref, app = world
    patient = fed.token("patient", "370102", person=ref)
    doctor = fed.token("clinician", "H33010600001")
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    async with fed.client(app, doctor, "TREATMENT") as d, fed.client(app, patient) as p:
        before = await gql(d, READ, {"id": ref})
        granted = await gql(p, GRANT, {"k": "grant-1", "g": "H33010600001", "until": until})
        consent_id = granted["data"]["grantConsent"]["consent"]["consentId"]
        after = await gql(d, READ, {"id": ref})
        await gql(p, REVOKE, {"k": "revoke-1", "c": consent_id})
        revoked = await gql(d, READ, {"id": ref})
    assert DIAGNOSIS not in str(before)  # parsed JSON: plain strings
    record = after["data"]["person"]["cloudRecord"]
    assert {n["diagnosisText"] for n in record["visits"]["nodes"]} == {DIAGNOSIS}
    # The consent covers visits and diagnoses, not imaging or identity.
    assert record["testResults"]["nodes"] == [] and after["data"]["person"]["name"] is None
    assert DIAGNOSIS not in str(revoked)


async def test_expired_consents_and_other_purposes_are_ignored(world):
    fed, ref, app = world
    from gateway.app import build_services

    services = build_services(fed.settings)
    store = ConsentStore(services.gateway_engine)
    now = datetime.now(UTC)
    await store.grant(
        consent_id="C-expired",
        person_ref=ref,
        grantee="H33010600001",
        data_classes=[DataClass.VISIT, DataClass.DIAGNOSIS],
        purpose=Purpose.TREATMENT,
        valid_from=now - timedelta(days=60),
        valid_until=now - timedelta(days=1),
        now=now - timedelta(days=60),
    )
    await store.grant(
        consent_id="C-research",
        person_ref=ref,
        grantee="H33010600001",
        data_classes=[DataClass.VISIT, DataClass.DIAGNOSIS],
        purpose=Purpose.RESEARCH,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=30),
        now=now,
    )
    response = await post(
        fed, app, "clinician", "H33010600001", None, READ, {"id": ref}, purpose="TREATMENT"
    )
    assert DIAGNOSIS not in response.text
    # Positive control: a consent in force for TREATMENT, the same read, the diagnosis shows.
    await store.grant(
        consent_id="C-treatment",
        person_ref=ref,
        grantee="H33010600001",
        data_classes=[DataClass.VISIT, DataClass.DIAGNOSIS],
        purpose=Purpose.TREATMENT,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=30),
        now=now,
    )
    await services.gateway_engine.dispose()
    await services.registry.dispose()
    response = await post(
        fed, app, "clinician", "H33010600001", None, READ, {"id": ref}, purpose="TREATMENT"
    )
    visits = response.json()["data"]["person"]["cloudRecord"]["visits"]["nodes"]
    assert {v["diagnosisText"] for v in visits} == {DIAGNOSIS}


# -- break-glass ---------------------------------------------------------------------------------
async def test_break_glass_reads_flags_and_is_limited_per_day(world):
    fed, ref, app = world
    others = await emergency_patients(fed)
    token = fed.token("clinician", "H33010600001", purposes=["TREATMENT", "EMERGENCY"])
    async with fed.client(app, token, "EMERGENCY") as c:
        first = await gql(c, READ, {"id": ref})
        again = await gql(c, READ, {"id": ref})  # the same person costs no second slot
        bodies = [await gql(c, READ, {"id": o}) for o in others]
    visits = first["data"]["person"]["cloudRecord"]["visits"]["nodes"]
    assert {v["diagnosisText"] for v in visits} == {DIAGNOSIS}
    notice = first["extensions"]["breakGlass"]
    assert notice["persons"] == [ref] and notice["limitPerDay"] == 5
    assert "flagged" in notice["warning"]
    assert again["extensions"]["breakGlass"]["persons"] == [ref]
    granted = [
        b
        for b in bodies
        if b["data"]["person"]["cloudRecord"]["visits"]["nodes"]
        and b["data"]["person"]["cloudRecord"]["visits"]["nodes"][0]["diagnosisText"]
    ]
    assert len(granted) == 4  # five persons a day: the victim and four others
    refused = bodies[-1]
    assert refused["extensions"]["breakGlass"]["refused"] == [others[-1]]
    assert "急诊诊断" not in str(refused["data"])


async def test_without_emergency_there_is_no_break_glass(world):
    fed, ref, app = world
    token = fed.token("clinician", "H33010600001", purposes=["TREATMENT", "EMERGENCY"])
    async with fed.client(app, token, "TREATMENT") as c:
        body = await gql(c, READ, {"id": ref})
    assert "extensions" not in body or "breakGlass" not in body["extensions"]
    assert DIAGNOSIS not in str(body)
    # Positive control: the same token and read with EMERGENCY breaks the glass.
    async with fed.client(app, token, "EMERGENCY") as c:
        body = await gql(c, READ, {"id": ref})
    assert body["extensions"]["breakGlass"]["persons"] == [ref]
    visits = body["data"]["person"]["cloudRecord"]["visits"]["nodes"]
    assert {v["diagnosisText"] for v in visits} == {DIAGNOSIS}


async def test_a_clinician_without_emergency_in_the_token_cannot_break_the_glass(world):
    fed, ref, app = world
    treatment_only = fed.token("clinician", "H33010600001", purposes=["TREATMENT"])
    async with fed.client(app, treatment_only, "EMERGENCY") as c:
        response = await c.post("/graphql", json={"query": READ, "variables": {"id": ref}})
    assert response.status_code == 403 and DIAGNOSIS not in response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "PURPOSE_NOT_ALLOWED"


# -- schema exposure and error messages -------------------------------------------------------
async def test_no_introspection_or_suggestions_outside_dev_mode(data_dir):
    fed = await Federation(data_dir, dev=False).setup()
    token = fed.token("clinician", "H33010600001")  # writes the trusted-issuers file first
    app = fed.app()
    async with fed.client(app, token, "TREATMENT") as c:
        schema = await c.post("/graphql", json={"query": "{ __schema { types { name } } }"})
        typo = await c.post("/graphql", json={"query": '{ persn(personId: "x") { name } }'})
    assert "__schema" in schema.text and '"types"' not in schema.text
    assert schema.json()["errors"]
    assert "Did you mean" not in typo.text and "person" not in typo.text.replace("persn", "")


async def test_introspection_answers_in_dev_mode(world):
    fed, _ref, app = world
    async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        body = await gql(c, "{ __schema { types { name } } }")
    assert any(t["name"] == "Person" for t in body["data"]["__schema"]["types"])


async def test_error_messages_never_echo_a_submitted_id_number(world):
    fed, _ref, app = world
    bad = VICTIM_ID[:-1] + ("0" if VICTIM_ID[-1] != "0" else "1")  # wrong check digit
    short = VICTIM_ID[:15]
    async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        for value in (bad, short):
            for query, variables in (
                ("query($n: String!) { person(idNumber: $n) { name } }", {"n": value}),
                (f'{{ person(idNumber: "{value}") {{ name }} }}', {}),
                ("query($n: Int!) { person(idNumber: $n) { name } }", {"n": value}),
            ):
                response = await c.post("/graphql", json={"query": query, "variables": variables})
                body = response.json()
                assert body.get("errors"), body
                text = str(body["errors"])
                assert value not in text, (query, text)


async def test_the_pseudonym_of_an_id_number_is_not_revealed_through_the_cloud_record(world):
    """A caller denied Person.personId must not learn it from CloudRecord.personId, the
    federation key of the same person."""
    fed, ref, app = world
    response = await post(
        fed,
        app,
        "clinician",
        "H33010600001",
        ["TREATMENT"],
        """query($n: String!) { person(idNumber: $n) { personId
                             cloudRecord { personId } } }""",
        {"n": VICTIM_ID},
    )
    assert ref not in response.content.decode()
    codes = {e["extensions"]["code"] for e in response.json()["errors"]}
    assert codes == {"FORBIDDEN_FIELD"}
