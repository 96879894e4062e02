"""prescriptionTrace: the chain issue → review → circulation → dispensing → delivery →
settlement, each step with who, when, where, how much and its signature; and what each role
sees of it (the patient, the chosen pharmacy, the prescribing hospital, the fund supervisor
of the hospital's region, another pharmacy, a researcher)."""

from __future__ import annotations

from datetime import datetime

import pytest

from connectors.sql.models import bureau
from schema.mutations.validation import beijing_now
from tests.support.mutations import rows, run
from tests.support.prescriptions import (
    PHARMACY_CODE,
    PHARMACY_PHARMACIST,
    Actors,
    call,
    dispense_input,
    issue_input,
    payload,
    rx_federation,
)

ALL = """query($id: ID!) { prescriptionTrace(prescriptionId: $id) { steps {
  seq kind at fromStatus toStatus actorRole actorOrg actorCode decision pharmacy certType
  total fundPay accountPay cashPay deliveryFee carrier trackingNo signature signatureValid
  integrity } } }"""
KINDS = "query($id: ID!) { prescriptionTrace(prescriptionId: $id) { steps { kind } } }"
SUPERVISION = """query($id: ID!) { prescriptionTrace(prescriptionId: $id) { steps {
  seq kind at actorOrg actorCode total fundPay cashPay deliveryFee signatureValid } } }"""


SETTLE = """mutation($key: String!, $input: RecordSettlementInput!) {
  recordSettlement(idempotencyKey: $key, input: $input) { settlement { settlementId total } } }"""


def settle_input(fed, visit: str, dispensing: str | None, **changes) -> dict:
    data = {
        "personId": fed.ref,
        "visitId": visit,
        "institutionCode": PHARMACY_CODE,
        "medicalType": "PHARMACY",
        "settledAt": beijing_now(datetime.now()).replace(microsecond=0).isoformat(),
        "insuredRegion": "330106",
        "treatmentRegion": "330106",
        "total": "45.00",
        "inPolicy": "45.00",
        "dispensingId": dispensing,
    }
    return {**data, **changes}


@pytest.fixture
async def chain(data_dir):
    """One prescription taken from issue to delivery and settled."""
    fed = await rx_federation(data_dir)
    app, who = fed.app(), Actors(fed)
    body = await call(fed, app, who.clinician, "issuePrescription", "i", issue_input(fed))
    rx_id = payload(body, "issuePrescription")["prescription"]["prescriptionId"]
    steps = [
        (
            who.patient,
            "circulatePrescription",
            {"prescriptionId": rx_id, "pharmacyCode": PHARMACY_CODE},
        ),
        (
            who.pharmacist,
            "reviewPrescription",
            {
                "prescriptionId": rx_id,
                "pharmacistCode": PHARMACY_PHARMACIST,
                "decision": "APPROVED",
            },
        ),
        (who.pharmacist, "dispensePrescription", dispense_input(rx_id)),
        (
            who.pharmacist,
            "shipPrescription",
            {"prescriptionId": rx_id, "carrier": "顺丰速运", "trackingNo": "SF1234567890"},
        ),
        (
            who.pharmacist,
            "deliverPrescription",
            {"prescriptionId": rx_id, "carrier": "顺丰速运", "trackingNo": "SF1234567890"},
        ),
    ]
    for n, (token, name, data) in enumerate(steps):
        payload(await call(fed, app, token, name, f"k{n}", data), name)
    # The bureau settles the purchase as a pharmacy visit, naming the pharmacy's dispensing.
    (visit,) = await fed.add_visits(
        fed.ref,
        1,
        institution=PHARMACY_CODE,
        visit_type="PHARMACY",
        with_prescriptions=False,
        begin=beijing_now(datetime.now()).date(),
    )
    fed.pharmacy_visit = visit
    body = await run(
        fed,
        app,
        fed.token("insurance_agency", "330000"),
        "SETTLEMENT",
        SETTLE,
        {"key": "s-1", "input": settle_input(fed, visit, "D" + rx_id[1:])},
    )
    assert "errors" not in body, body
    return fed, app, who, rx_id


async def _trace(chain, token, query, purpose="TREATMENT"):
    fed, app, _who, rx_id = chain
    return await run(fed, app, token, purpose, query, {"id": rx_id})


async def test_the_patient_sees_the_whole_chain_with_each_signature(chain):
    _fed, _app, who, _rx = chain
    body = await _trace(chain, who.patient, ALL, "PATIENT_ACCESS")
    assert "errors" not in body, body
    steps = body["data"]["prescriptionTrace"]["steps"]
    assert [s["kind"] for s in steps] == [
        "ISSUED",
        "CIRCULATED",
        "REVIEWED",
        "DISPENSED",
        "SHIPPED",
        "DELIVERED",
        "SETTLED",
    ]
    issued, _circulated, reviewed, dispensed, shipped, _delivered, settled = steps
    assert (issued["actorOrg"], issued["actorCode"]) == ("H33010600001", "D330106000123")
    assert (reviewed["actorOrg"], reviewed["decision"]) == (PHARMACY_CODE, "APPROVED")
    assert dispensed["total"] == "45.00" and dispensed["fundPay"] == "30.00"
    assert dispensed["deliveryFee"] == "8.00" and dispensed["certType"] == "01"
    assert shipped["trackingNo"] == "SF1234567890" and shipped["carrier"] == "顺丰速运"
    assert settled["total"] == "45.00" and settled["signature"] is None
    # every professional's step signed and valid; the patient's own step unsigned
    assert [s["signatureValid"] for s in steps] == [True, None, True, True, True, True, None]
    assert all(s["integrity"] == "VERIFIED" for s in steps[:6])
    assert settled["integrity"] == "VERIFIED"  # recorded through recordSettlement: anchored
    assert [s["seq"] for s in steps] == list(range(1, 8))

    # The chosen pharmacy: the chain and the money, not the tracking number (contact data).
    body = await _trace(chain, who.pharmacist, ALL)
    steps = body["data"]["prescriptionTrace"]["steps"]
    assert len(steps) == 7 and steps[3]["total"] == "45.00"
    denied = {(*tuple(e["path"][-1:]), e["extensions"]["code"]) for e in body["errors"]}
    assert denied == {("trackingNo", "FORBIDDEN_FIELD")}  # contact data: the patient's


async def test_the_fund_supervisor_sees_who_when_where_how_much_and_not_the_drugs(chain):
    fed, _app, _who, _rx = chain
    agency = fed.token("insurance_agency", "330100")
    body = await _trace(chain, agency, SUPERVISION, "FUND_SUPERVISION")
    assert "errors" not in body, body
    steps = body["data"]["prescriptionTrace"]["steps"]
    assert [s["kind"] for s in steps][-2:] == ["DELIVERED", "SETTLED"]
    assert steps[3]["actorCode"] == PHARMACY_PHARMACIST and steps[3]["cashPay"] == "5.00"
    # ... but not the review's wording, the delivery's tracking number or the signature text
    body = await _trace(
        chain,
        agency,
        "query($id: ID!) { prescriptionTrace(prescriptionId: $id) { steps { decision "
        "trackingNo signature } } }",
        "FUND_SUPERVISION",
    )
    fields = {e["path"][-1] for e in body["errors"]}
    assert fields == {"decision", "trackingNo", "signature"}
    # Another region's agency: no relation, no chain.
    other = fed.token("insurance_agency", "370100")
    assert (await _trace(chain, other, KINDS, "FUND_SUPERVISION"))["data"] == {
        "prescriptionTrace": None
    }


async def test_the_hospital_sees_steps_not_money_and_others_see_nothing(chain):
    _fed, _app, who, _rx = chain
    body = await _trace(chain, who.clinician, ALL)
    steps = body["data"]["prescriptionTrace"]["steps"]
    assert steps[0]["actorCode"] == "D330106000123" and steps[3]["total"] is None
    assert {e["path"][-1] for e in body["errors"]} >= {"total", "fundPay", "cashPay"}
    fed = chain[0]
    assert (await _trace(chain, who.other_pharmacist, KINDS))["data"] == {"prescriptionTrace": None}
    researcher = fed.token("researcher", "R11010800001")
    body = await _trace(chain, researcher, KINDS, "RESEARCH")
    assert body["data"] == {"prescriptionTrace": None}


async def test_the_settlement_step_is_the_one_naming_the_dispensing(chain):
    """Linked by the dispensing's id, not matched: another settlement of the same person, at
    the same pharmacy, on the same day and for the same total is not this chain's."""
    fed, _app, who, rx_id = chain
    (visit,) = await fed.add_visits(
        fed.ref,
        1,
        institution=PHARMACY_CODE,
        visit_type="PHARMACY",
        with_prescriptions=False,
        begin=beijing_now(datetime.now()).date(),
    )
    await fed.insert(
        "bureau-330000",
        bureau.Settlement,
        [
            dict(
                setl_id="SLOOKALIKE000001",
                mdtrt_id=visit,
                person_ref=fed.ref,
                institution_code=PHARMACY_CODE,
                med_type="PHARMACY",
                setl_time=beijing_now(datetime.now()),
                insuplc_admdvs="330106",
                mdtrtarea_admvs="330106",
                total_fen=4500,
                in_policy_fen=4500,
                fund_pay_fen=3000,
                acct_pay_fen=1000,
                cash_pay_fen=500,
                cross_province=False,
                clearing_status="PENDING",
            )
        ],
    )
    body = await _trace(chain, who.patient, ALL, "PATIENT_ACCESS")
    settled = [s for s in body["data"]["prescriptionTrace"]["steps"] if s["kind"] == "SETTLED"]
    assert len(settled) == 1 and settled[0]["integrity"] == "VERIFIED"  # the linked one only
    (linked,) = [
        r for r in await rows(fed, "bureau-330000", bureau.Settlement) if r["dispensing_id"]
    ]
    assert linked["dispensing_id"] == "D" + rx_id[1:] and linked["setl_id"] != "SLOOKALIKE000001"


async def test_a_settlement_names_only_a_dispensing_of_its_person_pharmacy_and_total(chain):
    fed, app, _who, rx_id = chain
    agency = fed.token("insurance_agency", "330000")
    dispensing = "D" + rx_id[1:]
    cases = [
        ({}, "was settled already"),  # the fixture settled it
        ({"dispensingId": "D" + "9" * 23}, "is not a dispensing of this person at this pharmacy"),
        ({"total": "46.00", "inPolicy": "46.00"}, "does not have this settlement's total"),
        ({"medicalType": "OUTPATIENT"}, "is only for a PHARMACY settlement"),
        ({"dispensingId": "X1"}, "is not a dispensing id"),
    ]
    for n, (changes, reason) in enumerate(cases):
        (visit,) = await fed.add_visits(
            fed.ref,
            1,
            institution=PHARMACY_CODE,
            visit_type="PHARMACY",
            with_prescriptions=False,
            begin=beijing_now(datetime.now()).date(),
        )
        data = settle_input(fed, visit, dispensing, **changes)
        body = await run(fed, app, agency, "SETTLEMENT", SETTLE, {"key": f"x-{n}", "input": data})
        problems = body["errors"][0]["extensions"].get("problems") or []
        at = [p["reason"] for p in problems if p["path"] == ["input", "dispensingId"]]
        assert at and reason in at[0], (changes, body["errors"])
    settled = await rows(fed, "bureau-330000", bureau.Settlement)
    assert [r["dispensing_id"] for r in settled] == [dispensing]  # only the fixture's
