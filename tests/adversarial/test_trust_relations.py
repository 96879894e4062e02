"""Self-made relations: no mutation, and no record an institution keeps itself, makes the
caller related to a person. Each attack is tried against the victim of the adversarial world
(insured in Shandong, treated at H37010200003) by a Hangzhou clinician, agency or patient who
has no relation to them, and each has its positive control: the fact of record that does
make the relation (a bureau's visit, the person's own consent, the agency's own region)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from connectors.sql.models import bureau, hospital, platform
from schema.build import build_schema
from schema.mutations import Mutation
from security import warnings
from tests.support.adversarial import (
    GRANT,
    MUTATION_REFUSALS,
    NAME,
    READ,
    VICTIM_ID,
    assert_no_leak,
    leaked,
    post,
)
from tests.support.audit import open_warnings
from tests.support.federation import RECENT_VISIT, make_id_number
from tests.support.mutations import count

HANGZHOU = "H33010600001"
HANGZHOU_LIS = "hospital-h33010600001"
PUBLISH = """mutation($k: String!, $input: PublishTestResultInput!) {
  publishTestResult(idempotencyKey: $k, input: $input) { testResult { resultId } } }"""
SETTLE = """mutation($k: String!, $input: RecordSettlementInput!) {
  recordSettlement(idempotencyKey: $k, input: $input) { settlement { settlementId } } }"""
FILE = """mutation($k: String!, $input: FileForCrossRegionCareInput!) {
  fileForCrossRegionCare(idempotencyKey: $k, input: $input) { filing { filingId } } }"""
NAME_ONLY = "query($id: ID!) { person(personId: $id) { name } }"
# Every mutation of the API, each tried by a test below; a new one fails the last test here
# until its own self-made-relation test is written.
COVERED = {
    "publishTestResult",
    "recordSettlement",
    "fileForCrossRegionCare",
    "grantConsent",
    "revokeConsent",
    "requestExtract",
    "approveExtract",
    "refuseExtract",
    "handleWarning",
    "closeAlert",
    "handleAlert",
    *(
        f"{verb}Prescription"
        for verb in ("issue", "review", "circulate", "dispense", "ship", "deliver", "cancel")
    ),
}
RX_CALL = """mutation($k: String!, $input: %sInput!) {
  %s(idempotencyKey: $k, input: $input) { prescription { prescriptionId status } } }"""
RX_READ = "query($id: ID!) { prescription(prescriptionId: $id) { prescriptionId circulatedTo } }"
PHARMACY = "P33010600101"


def lab(person_id: str, visit_id: str | None) -> dict:
    now = datetime.now().replace(microsecond=0)
    return {
        "category": "LAB",
        "personId": person_id,
        "visitId": visit_id,
        "itemName": "葡萄糖",
        "loincCode": "2345-7",
        "value": 5.2,
        "unit": "mmol/L",
        "collectedAt": (now - timedelta(hours=3)).isoformat(),
        "reportedAt": (now - timedelta(hours=1)).isoformat(),
        "orderingDoctor": "D330106000123",
    }


async def reads_name(fed, app, ref: str, role="clinician", org=HANGZHOU, purpose=None) -> bool:
    response = await post(fed, app, role, org, None, NAME_ONLY, {"id": ref}, purpose=purpose)
    person = response.json()["data"]["person"]
    return bool(person and person["name"])


async def agency(fed, app, org: str, query: str, variables: dict):
    return await post(
        fed, app, "insurance_agency", org, None, query, variables, purpose="SETTLEMENT"
    )


async def publish(fed, app, key: str, data: dict, org: str = HANGZHOU) -> dict:
    response = await post(fed, app, "clinician", org, None, PUBLISH, {"k": key, "input": data})
    assert_no_leak(response, "publishTestResult", refusals=MUTATION_REFUSALS)
    return response.json()


def one_problem(body: dict) -> dict:
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    (problem,) = error["extensions"]["problems"]
    return problem


# -- TREATING comes from a bureau's visit, never from a hospital's own results ---------------
async def test_a_result_in_the_callers_own_lis_makes_no_treating_relation(world):
    fed, ref, app = world
    # The Hangzhou hospital's own result system holds a recent result for the victim (written
    # there by its LIS, not by the bureau): still no relation.
    await fed.add_result(ref, source=HANGZHOU_LIS, reported_at=datetime.now() - timedelta(days=1))
    response = await post(fed, app, "clinician", HANGZHOU, None, READ, {"id": ref})
    assert_no_leak(response, "own result")
    errors = response.json()["errors"]
    assert {e["extensions"]["code"] for e in errors} == {"FORBIDDEN_FIELD"}
    # Positive control: the bureau records a recent visit there, and the hospital treats.
    await fed.add_visits(
        ref, 1, source="bureau-330000", institution=HANGZHOU, insured="370102", begin=RECENT_VISIT
    )
    assert await reads_name(fed, app, ref)


async def test_publishing_without_a_visit_is_refused_writes_nothing_and_relates_nothing(world):
    fed, ref, app = world
    body = await publish(fed, app, "no-visit", lab(ref, None))
    problem = one_problem(body)
    assert problem["path"] == ["input", "visitId"] and "required" in problem["reason"]
    assert ref not in str(body) and VICTIM_ID not in str(body)
    assert await count(fed, HANGZHOU_LIS, hospital.TestResult) == 0
    assert await count(fed, HANGZHOU_LIS, hospital.Patient) == 0
    assert not await reads_name(fed, app, ref)


async def test_another_hospitals_visit_an_old_visit_or_a_made_up_one_are_refused_alike(world):
    fed, ref, app = world
    jinan_visit = (
        await fed.add_visits(
            ref, 1, source="bureau-370000", institution="H37010200003", begin=RECENT_VISIT
        )
    )[0]
    (old_visit,) = await fed.add_visits(
        ref, 1, source="bureau-330000", institution=HANGZHOU, insured="370102"
    )  # January 2020: long outside the treating window
    stranger = fed.indexer.person_ref(make_id_number("330106", seq=4))  # insured nowhere
    reasons = set()
    for key, data in (
        ("jinan", lab(ref, jinan_visit)),
        ("old", lab(ref, old_visit)),
        ("made-up", lab(ref, "MD9999999999")),
        ("stranger", lab(stranger, old_visit)),
    ):
        problem = one_problem(await publish(fed, app, key, data))
        assert problem["path"] == ["input", "visitId"], key
        reasons.add(problem["reason"])
    # One answer whatever is wrong: it tells nothing about the person or their visits.
    assert len(reasons) == 1
    assert await count(fed, HANGZHOU_LIS, hospital.TestResult) == 0
    assert not await reads_name(fed, app, ref)


async def test_a_recent_bureau_visit_lets_the_hospital_publish_and_read(world):
    fed, ref, app = world
    (visit,) = await fed.add_visits(
        ref, 1, source="bureau-330000", institution=HANGZHOU, insured="370102", begin=RECENT_VISIT
    )
    body = await publish(fed, app, "ok", lab(ref, visit))
    assert "errors" not in body, body
    assert await count(fed, HANGZHOU_LIS, hospital.TestResult) == 1
    assert await reads_name(fed, app, ref)


async def test_the_treating_window_is_pinned_at_its_first_day(world):
    fed, ref, app = world
    first_day = date.today() - timedelta(days=180)
    (edge,) = await fed.add_visits(
        ref, 1, source="bureau-330000", institution=HANGZHOU, insured="370102", begin=first_day
    )
    body = await publish(fed, app, "edge", lab(ref, edge))
    assert "errors" not in body, body
    assert await reads_name(fed, app, ref)
    other = await fed.add_person(make_id_number("330106", seq=31), "边界外")
    (outside,) = await fed.add_visits(
        other, 1, institution=HANGZHOU, begin=first_day - timedelta(days=1)
    )
    assert one_problem(await publish(fed, app, "outside", lab(other, outside)))["path"] == [
        "input",
        "visitId",
    ]
    assert not await reads_name(fed, app, other)


# -- settlements, filings and consents relate nobody to the writer ---------------------------
async def test_an_agency_cannot_settle_or_file_its_way_into_another_region(world):
    fed, ref, app = world
    (visit,) = await fed.add_visits(
        ref, 1, source="bureau-370000", institution="H37010200003", insured="370102"
    )
    settle = {
        "personId": ref,
        "visitId": visit,
        "institutionCode": "H37010200003",
        "medicalType": "OUTPATIENT",
        "settledAt": (datetime.now() - timedelta(days=1)).replace(microsecond=0).isoformat(),
        "insuredRegion": "370102",
        "treatmentRegion": "370102",
        "total": "100.00",
        "inPolicy": "100.00",
    }
    for key, data, refusal in (
        ("as-is", settle, "FORBIDDEN"),
        ("lie", {**settle, "treatmentRegion": "330106"}, "BAD_USER_INPUT"),  # not the visit's
    ):
        response = await agency(fed, app, "330100", SETTLE, {"k": key, "input": data})
        assert_no_leak(response, "recordSettlement", refusals=MUTATION_REFUSALS)
        assert response.json()["errors"][0]["extensions"]["code"] == refusal, key
    assert await count(fed, "bureau-370000", bureau.Settlement) == 0
    filing = {
        "k": "f",
        "input": {
            "personId": ref,
            "insuredRegion": "370102",
            "destination": "330100",
            "category": "TEMPORARY",
            "channel": "APP",
            "validFrom": date.today().isoformat(),
            "validUntil": (date.today() + timedelta(days=30)).isoformat(),
        },
    }
    response = await agency(fed, app, "330100", FILE, filing)
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await count(fed, "platform", platform.Filing) == 1  # the world's own filing only
    assert not await reads_name(fed, app, ref, "insurance_agency", "330100", "SETTLEMENT")

    # Positive controls: the victim's own agency settles and files; the settlement and the
    # filing are the Shandong agency's facts and give the Hangzhou agency nothing.
    response = await agency(fed, app, "370100", SETTLE, {"k": "s", "input": settle})
    assert "errors" not in response.json(), response.json()
    response = await agency(fed, app, "370100", FILE, filing)
    assert "errors" not in response.json(), response.json()
    assert await reads_name(fed, app, ref, "insurance_agency", "370100", "SETTLEMENT")
    assert not await reads_name(fed, app, ref, "insurance_agency", "330100", "SETTLEMENT")
    assert not await reads_name(fed, app, ref)


async def test_the_settlement_centre_settles_cross_province_only(world):
    fed, ref, app = world
    (visit,) = await fed.add_visits(
        ref, 1, source="bureau-370000", institution="H37010200003", insured="370102"
    )
    settle = {
        "personId": ref,
        "visitId": visit,
        "institutionCode": "H37010200003",
        "medicalType": "OUTPATIENT",
        "settledAt": (datetime.now() - timedelta(days=1)).replace(microsecond=0).isoformat(),
        "insuredRegion": "370102",
        "treatmentRegion": "370102",
        "total": "100.00",
        "inPolicy": "100.00",
    }
    for org in ("100000", "370000"):  # the national and a provincial centre
        response = await post(
            fed, app, "settlement_center", org, None, SETTLE, {"k": org, "input": settle}
        )
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "FORBIDDEN" and "cross-province" in error["message"]
    assert await count(fed, "bureau-370000", bureau.Settlement) == 0
    # Positive control: the same visit is the Shandong agency's to settle.
    response = await agency(fed, app, "370000", SETTLE, {"k": "a", "input": settle})
    assert "errors" not in response.json(), response.json()


async def test_a_provincial_centre_settles_only_its_own_provinces_cross_province_care(world):
    fed, ref, app = world
    # The victim (insured in Shandong) was treated in Hangzhou, filed with the platform.
    (visit,) = await fed.add_visits(
        ref, 1, source="bureau-330000", institution=HANGZHOU, insured="370102"
    )
    filing = {
        "personId": ref,
        "insuredRegion": "370102",
        "destination": "330000",
        "category": "TEMPORARY",
        "channel": "APP",
        "validFrom": (date.today() - timedelta(days=10)).isoformat(),
        "validUntil": (date.today() + timedelta(days=30)).isoformat(),
    }
    response = await agency(fed, app, "370000", FILE, {"k": "f", "input": filing})
    assert "errors" not in response.json(), response.json()
    settle = {
        "personId": ref,
        "visitId": visit,
        "institutionCode": HANGZHOU,
        "medicalType": "OUTPATIENT",
        "settledAt": (datetime.now() - timedelta(days=1)).replace(microsecond=0).isoformat(),
        "insuredRegion": "370102",
        "treatmentRegion": "330106",
        "total": "100.00",
        "inPolicy": "100.00",
    }
    response = await post(
        fed, app, "settlement_center", "220000", None, SETTLE, {"k": "jl", "input": settle}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    before = await count(fed, "platform", platform.CrossSettlement)
    # Positive control: the Zhejiang centre (treatment province) records it.
    response = await post(
        fed, app, "settlement_center", "330000", None, SETTLE, {"k": "zj", "input": settle}
    )
    assert "errors" not in response.json(), response.json()
    assert await count(fed, "platform", platform.CrossSettlement) == before + 1


async def test_consent_is_the_persons_own_act_and_nobody_elses(world):
    fed, ref, app = world
    until = (datetime.now() + timedelta(days=30)).replace(microsecond=0).isoformat()
    grant = {"k": "g", "g": HANGZHOU, "until": until}
    # A clinician cannot grant; another patient's consent covers only their own record.
    response = await post(fed, app, "clinician", HANGZHOU, None, GRANT, grant)
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other = fed.indexer.person_ref(make_id_number("330106", seq=5))
    response = await post(fed, app, "patient", "330106", None, GRANT, grant, person=other)
    assert "errors" not in response.json(), response.json()
    assert not await reads_name(fed, app, ref)
    response = await post(fed, app, "clinician", HANGZHOU, None, READ, {"id": ref})
    assert not leaked(response.content.decode(), NAME)

    # Positive control: the victim's own consent opens their visits to the hospital.
    response = await post(fed, app, "patient", "370102", None, GRANT, grant, person=ref)
    assert "errors" not in response.json(), response.json()
    response = await post(fed, app, "clinician", HANGZHOU, None, READ, {"id": ref})
    visits = response.json()["data"]["person"]["cloudRecord"]["visits"]["nodes"]
    assert visits and all(v["diagnosisText"] for v in visits)


async def test_nobody_revokes_a_consent_but_its_person(world):
    fed, ref, app = world
    until = (datetime.now() + timedelta(days=30)).replace(microsecond=0).isoformat()
    grant = {"k": "g", "g": HANGZHOU, "until": until}
    response = await post(fed, app, "patient", "370102", None, GRANT, grant, person=ref)
    consent_id = response.json()["data"]["grantConsent"]["consent"]["consentId"]
    revoke = """mutation($k: String!, $c: ID!) { revokeConsent(idempotencyKey: $k,
        consentId: $c) { consent { status } } }"""
    other = fed.indexer.person_ref(make_id_number("330106", seq=6))
    response = await post(
        fed, app, "patient", "330106", None, revoke, {"k": "r", "c": consent_id}, person=other
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    response = await post(fed, app, "clinician", HANGZHOU, None, READ, {"id": ref})
    assert response.json()["data"]["person"]["cloudRecord"]["visits"]["nodes"]


async def test_extract_jobs_relate_nobody_to_any_person(world):
    fed, ref, app = world
    request = """mutation($k: String!) { requestExtract(idempotencyKey: $k,
        input: {classes: ["identity"]}) { job { jobId status } } }"""
    decide = """mutation($k: String!, $j: ID!) { %s(idempotencyKey: $k, jobId: $j) {
        job { status } } }"""
    response = await post(fed, app, "clinician", HANGZHOU, None, request, {"k": "x"})
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    response = await post(fed, app, "researcher", "R11010800001", None, request, {"k": "a"})
    job = response.json()["data"]["requestExtract"]["job"]
    assert job["status"] == "REQUESTED"
    # The requester cannot decide its own job; an administrator can, and neither reads anyone.
    for name in ("approveExtract", "refuseExtract"):
        response = await post(
            fed,
            app,
            "researcher",
            "R11010800001",
            None,
            decide % name,
            {"k": name, "j": job["jobId"]},
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN", name
    response = await post(
        fed, app, "admin", "100000", None, decide % "refuseExtract", {"k": "r", "j": job["jobId"]}
    )
    assert response.json()["data"]["refuseExtract"]["job"]["status"] == "REFUSED"
    response = await post(fed, app, "researcher", "R11010800001", None, request, {"k": "b"})
    second = response.json()["data"]["requestExtract"]["job"]["jobId"]
    response = await post(
        fed, app, "admin", "100000", None, decide % "approveExtract", {"k": "p", "j": second}
    )
    assert "errors" not in response.json(), response.json()
    for role, org in (("researcher", "R11010800001"), ("admin", "100000")):
        response = await post(fed, app, role, org, None, READ, {"id": ref})
        assert_no_leak(response, role)
        assert not leaked(response.content.decode(), NAME)


async def test_handling_a_warning_relates_nobody_to_its_person(world):
    fed, ref, app = world
    (wid,) = await open_warnings(
        fed,
        [
            warnings.NewWarning(
                rule="DUPLICATE_BILLING",
                grade=3,
                phase="POST",
                setl_id="SVICTIM1",
                mdtrt_id=None,
                source="platform",
                person_ref=ref,
                institution_code=HANGZHOU,
                doctor_code=None,
                insured_region="370102",
                treatment_region="330106",
                settled_at=datetime(2020, 5, 1),
                detail="test",
            )
        ],
    )
    handle = """mutation($k: String!, $i: HandleWarningInput!) {
        handleWarning(idempotencyKey: $k, input: $i) { warning { state } } }"""
    response = await post(
        fed,
        app,
        "clinician",
        HANGZHOU,
        None,
        handle,
        {"k": "mine-now", "i": {"warningId": wid, "action": "ACKNOWLEDGE", "note": "mine now"}},
    )
    assert_no_leak(response, "handleWarning", refusals=MUTATION_REFUSALS)
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for action in ("ASSIGN", "RESOLVE"):
        change = {"warningId": wid, "action": action, "note": "checked", "owner": HANGZHOU}
        variables = {"k": f"agency-{action}", "i": change}
        response = await post(
            fed,
            app,
            "insurance_agency",
            "330000",
            None,
            handle,
            variables,
            purpose="FUND_SUPERVISION",
        )
        assert "errors" not in response.json(), response.json()
    # The Hangzhou agency supervised the claim; it is still not related to the person.
    assert not await reads_name(fed, app, ref, "insurance_agency", "330000", "FUND_SUPERVISION")
    assert not await reads_name(fed, app, ref)
    # Positive control: the victim's own agency reads them.
    assert await reads_name(fed, app, ref, "insurance_agency", "370100", "SETTLEMENT")


async def test_closing_the_victims_break_glass_alert_relates_nobody(world):
    """A security officer who closes the alert of a break-glass on the victim reads no more
    of the victim than before; nor does the clinician whose alert was closed, once its
    emergency is over (a TREATMENT read)."""
    fed, ref, app = world
    emergency = ["TREATMENT", "EMERGENCY"]
    response = await post(
        fed, app, "clinician", HANGZHOU, emergency, READ, {"id": ref}, purpose="EMERGENCY"
    )
    assert response.json()["extensions"]["breakGlass"]["opened"] == [ref]
    alerts = "{ auditAlerts { nodes { id } } }"
    response = await post(fed, app, "auditor", "330000", None, alerts, {})
    [alert] = response.json()["data"]["auditAlerts"]["nodes"]
    close = """mutation($id: Int!) { closeAlert(alertId: $id, note: "checked") {
        alert { state } } }"""
    response = await post(fed, app, "auditor", "330000", None, close, {"id": alert["id"]})
    assert response.json()["data"]["closeAlert"]["alert"]["state"] == "RESOLVED"
    for role, org, purposes, purpose in (
        ("auditor", "330000", None, None),
        ("clinician", HANGZHOU, emergency, "TREATMENT"),
    ):
        response = await post(fed, app, role, org, purposes, READ, {"id": ref}, purpose=purpose)
        assert_no_leak(response, role)


async def test_owning_the_victims_alert_relates_nobody(world):
    """A security officer who assigns the break-glass alert on the victim to the clinician
    who broke the glass, and acknowledges it, relates neither of them to the victim; and the
    clinician named owner may not handle the alert (an owner is a name, not a grant)."""
    fed, ref, app = world
    emergency = ["TREATMENT", "EMERGENCY"]
    response = await post(
        fed, app, "clinician", HANGZHOU, emergency, READ, {"id": ref}, purpose="EMERGENCY"
    )
    assert response.json()["extensions"]["breakGlass"]["opened"] == [ref]
    response = await post(
        fed, app, "auditor", "330000", None, "{ auditAlerts { nodes { id } } }", {}
    )
    [alert] = response.json()["data"]["auditAlerts"]["nodes"]
    handle = """mutation($k: String!, $i: HandleAlertInput!) {
        handleAlert(idempotencyKey: $k, input: $i) { alert { state owner } } }"""
    assign = {"alertId": alert["id"], "action": "ASSIGN", "note": "ask", "owner": HANGZHOU}
    response = await post(fed, app, "auditor", "330000", None, handle, {"k": "a1", "i": assign})
    assert response.json()["data"]["handleAlert"]["alert"]["owner"] == HANGZHOU
    resolve = {"alertId": alert["id"], "action": "RESOLVE", "note": "my own emergency"}
    response = await post(fed, app, "clinician", HANGZHOU, None, handle, {"k": "c1", "i": resolve})
    assert_no_leak(response, "handleAlert", refusals=MUTATION_REFUSALS)
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    ack = {"alertId": alert["id"], "action": "ACKNOWLEDGE", "note": "checking"}
    response = await post(fed, app, "auditor", "330000", None, handle, {"k": "a2", "i": ack})
    assert response.json()["data"]["handleAlert"]["alert"]["state"] == "ACKNOWLEDGED"
    for role, org, purposes, purpose in (
        ("auditor", "330000", None, None),
        ("clinician", HANGZHOU, emergency, "TREATMENT"),
    ):
        response = await post(fed, app, role, org, purposes, READ, {"id": ref}, purpose=purpose)
        assert_no_leak(response, role)


async def rx_call(fed, app, role, org, name, data, person=None, purpose=None):
    input_type = {"ship": "Delivery", "deliver": "Delivery"}.get(
        name.removesuffix("Prescription"), name[0].upper() + name[1:]
    )
    response = await post(
        fed,
        app,
        role,
        org,
        None,
        RX_CALL % (input_type, name),
        {"k": f"{name}-{role}-{org}", "input": data},
        purpose=purpose,
        person=person,
        # The token asserts the professional the input names (a signing step's signer).
        professional=data.get("doctorCode") or data.get("pharmacistCode"),
    )
    assert_no_leak(response, name, refusals=MUTATION_REFUSALS)
    return response.json()


async def test_prescriptions_relate_nobody_beyond_the_chosen_pharmacys_row(world):
    """No prescription mutation makes its caller related to the person: issuing needs the
    bureau's visit, every other step a relation the prescription already has (its hospital,
    the pharmacy the patient chose), and the patient's choice relates that pharmacy to that
    prescription row only, never to the person's record."""
    fed, ref, app = world
    item = {
        "drugCode": "XC08CAA067A001010104163",
        "drugName": "苯磺酸氨氯地平片",
        "quantity": 1,
        "unit": "盒",
        "dosage": "5mg 每日1次 口服",
        "days": 28,
    }
    issue = {"personId": ref, "visitId": "MD9999999999", "doctorCode": "D330106000123"}
    issue["items"] = [item]
    body = await rx_call(fed, app, "clinician", HANGZHOU, "issuePrescription", issue)
    assert one_problem(body)["path"] == ["input", "visitId"]
    assert await count(fed, HANGZHOU_LIS, hospital.EPrescription) == 0
    assert not await reads_name(fed, app, ref)
    # Positive control: the bureau's visit there lets the hospital issue.
    (visit,) = await fed.add_visits(
        ref, 1, source="bureau-330000", institution=HANGZHOU, insured="370102", begin=RECENT_VISIT
    )
    body = await rx_call(
        fed, app, "clinician", HANGZHOU, "issuePrescription", {**issue, "visitId": visit}
    )
    rx_id = body["data"]["issuePrescription"]["prescription"]["prescriptionId"]

    # A pharmacy the patient did not choose, another hospital, another patient: refused alike.
    other_patient = fed.indexer.person_ref(make_id_number("330106", seq=6))
    refused = [
        (
            "pharmacist",
            PHARMACY,
            "reviewPrescription",
            {"pharmacistCode": "YP33010600101001", "decision": "APPROVED"},
            None,
        ),
        (
            "pharmacist",
            PHARMACY,
            "dispensePrescription",
            {
                "pharmacistCode": "YP33010600101001",
                "certType": "01",
                "items": [{"drugCode": item["drugCode"], "quantity": 1, "amount": "22.50"}],
                "fundPay": "20.00",
                "accountPay": "0",
                "cashPay": "2.50",
            },
            None,
        ),
        (
            "pharmacist",
            PHARMACY,
            "shipPrescription",
            {"carrier": "顺丰", "trackingNo": "SF000001"},
            None,
        ),
        (
            "pharmacist",
            PHARMACY,
            "deliverPrescription",
            {"carrier": "顺丰", "trackingNo": "SF000001"},
            None,
        ),
        (
            "clinician",
            "H37010200003",
            "cancelPrescription",
            {"doctorCode": "D370102000123", "reason": "试"},
            None,
        ),
        ("patient", "330106", "circulatePrescription", {"pharmacyCode": PHARMACY}, other_patient),
    ]
    for role, org, name, data, person in refused:
        purpose = "PATIENT_ACCESS" if role == "patient" else None
        body = await rx_call(
            fed, app, role, org, name, {"prescriptionId": rx_id, **data}, person, purpose
        )
        assert "no prescription with this id that you may" in body["errors"][0]["message"], name
    assert not await reads_name(fed, app, ref, role="pharmacist", org=PHARMACY)

    # The victim's own choice: the pharmacy reads that prescription, and still not the person.
    body = await rx_call(
        fed,
        app,
        "patient",
        "370102",
        "circulatePrescription",
        {"prescriptionId": rx_id, "pharmacyCode": PHARMACY},
        ref,
        "PATIENT_ACCESS",
    )
    assert body["data"]["circulatePrescription"]["prescription"]["status"] == "PENDING_REVIEW"
    response = await post(fed, app, "pharmacist", PHARMACY, None, RX_READ, {"id": rx_id})
    assert response.json()["data"]["prescription"] == {
        "prescriptionId": rx_id,
        "circulatedTo": PHARMACY,
    }
    assert not await reads_name(fed, app, ref, role="pharmacist", org=PHARMACY)


def test_every_mutation_has_a_self_made_relation_test():
    names = set(build_schema(dev=True, mutation=Mutation)._schema.mutation_type.fields)
    assert names == COVERED, f"mutations without a self-made-relation test: {names - COVERED}"


@pytest.mark.parametrize("name", sorted(COVERED))
def test_the_policy_file_says_which_fact_each_mutation_writes(name):
    from security.policy.rules import POLICY_FILE

    header = POLICY_FILE.read_text(encoding="utf-8").split("\n[floor]\n")[0]
    assert name in header
