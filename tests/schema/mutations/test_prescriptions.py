"""The e-prescription workflow through the HTTP app: each transition, each refusal (with its
positive control), idempotency, and the rows each source keeps."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from connectors.sql import rx_writers
from connectors.sql.engine import create_source_engine
from connectors.sql.models import hospital, pharmacy
from tests.support.mutations import code, problem_paths, rows
from tests.support.prescriptions import (
    DOCTOR,
    DRUG,
    DRUG_2,
    HOSPITAL,
    PHARMACIST,
    PHARMACY,
    PHARMACY_CODE,
    PHARMACY_PHARMACIST,
    Actors,
    call,
    dispense_input,
    issue_input,
    payload,
    rx_federation,
)


@pytest.fixture
async def fed(data_dir):
    return await rx_federation(data_dir)


async def _issue(fed, app, who, key="issue-1", **changes) -> str:
    body = await call(
        fed, app, who.clinician, "issuePrescription", key, issue_input(fed, **changes)
    )
    return payload(body, "issuePrescription")["prescription"]["prescriptionId"]


async def test_issue_to_delivery_moves_through_every_state_and_keeps_each_event(fed):
    app, who = fed.app(), Actors(fed)
    body = await call(fed, app, who.clinician, "issuePrescription", "issue-1", issue_input(fed))
    rx = payload(body, "issuePrescription")["prescription"]
    rx_id = rx["prescriptionId"]
    assert rx["status"] == "PENDING_REVIEW" and rx["reviewStatus"] == "PENDING"
    assert rx["institutionCode"] == "H33010600001" and rx["doctorCode"] == DOCTOR
    assert rx["items"] == [{"drugCode": DRUG, "quantity": 2, "days": 28}]
    # valid to the end of the day of issue (validDays 1, the rule)
    issued, expires = (datetime.fromisoformat(rx[k]) for k in ("issuedAt", "expiresAt"))
    assert expires.date() == issued.date() + timedelta(days=1) and expires.hour == 0

    # The patient chooses the pharmacy; the pharmacy's pharmacist may then review.
    body = await call(
        fed,
        app,
        who.patient,
        "circulatePrescription",
        "c-1",
        {"prescriptionId": rx_id, "pharmacyCode": PHARMACY_CODE},
    )
    assert payload(body, "circulatePrescription")["prescription"]["circulatedTo"] == PHARMACY_CODE
    review = {
        "prescriptionId": rx_id,
        "pharmacistCode": PHARMACY_PHARMACIST,
        "decision": "APPROVED",
    }
    body = await call(fed, app, who.pharmacist, "reviewPrescription", "r-1", review)
    assert payload(body, "reviewPrescription")["prescription"]["status"] == "APPROVED"

    body = await call(
        fed, app, who.pharmacist, "dispensePrescription", "d-1", dispense_input(rx_id)
    )
    assert payload(body, "dispensePrescription")["prescription"]["status"] == "DISPENSED"
    ship = {"prescriptionId": rx_id, "carrier": "顺丰速运", "trackingNo": "SF1234567890"}
    body = await call(fed, app, who.pharmacist, "shipPrescription", "s-1", ship)
    assert payload(body, "shipPrescription")["prescription"]["status"] == "SHIPPED"
    body = await call(fed, app, who.pharmacist, "deliverPrescription", "v-1", ship)
    assert payload(body, "deliverPrescription")["prescription"]["status"] == "DELIVERED"

    events = sorted(
        await rows(fed, HOSPITAL, hospital.PrescriptionEvent, rx_id=rx_id), key=lambda e: e["seq"]
    )
    assert [(e["seq"], e["kind"], e["from_status"], e["to_status"]) for e in events] == [
        (1, "ISSUED", None, "PENDING_REVIEW"),
        (2, "CIRCULATED", "PENDING_REVIEW", "PENDING_REVIEW"),
        (3, "REVIEWED", "PENDING_REVIEW", "APPROVED"),
        (4, "DISPENSED", "APPROVED", "DISPENSED"),
        (5, "SHIPPED", "DISPENSED", "SHIPPED"),
        (6, "DELIVERED", "SHIPPED", "DELIVERED"),
    ]
    assert [e["actor_org"] for e in events] == [
        "H33010600001",
        "PATIENT",
        PHARMACY_CODE,
        PHARMACY_CODE,
        PHARMACY_CODE,
        PHARMACY_CODE,
    ]
    (dispensing,) = await rows(fed, PHARMACY, pharmacy.Dispensing, rx_id=rx_id)
    assert dispensing["cert_type"] == "01" and dispensing["delivered"] is True
    assert (dispensing["total_fen"], dispensing["fund_pay_fen"], dispensing["cash_pay_fen"]) == (
        4500,
        3000,
        500,
    )
    # The fee is on top of the bill, the patient's: never in the fund's share.
    assert dispensing["delivery_fee_fen"] == 800
    deliveries = await rows(fed, PHARMACY, pharmacy.Delivery, rx_id=rx_id)
    assert sorted(
        (d["event"], d["tracking_no"], d["fee_fen"], d["paid_by"]) for d in deliveries
    ) == [
        ("DELIVERED", "SF1234567890", 0, "PATIENT"),
        ("SHIPPED", "SF1234567890", 800, "PATIENT"),
    ]
    assert json.loads(events[4]["detail"])["paidBy"] == "PATIENT"


async def test_no_dispensing_before_approval_after_rejection_twice_or_beyond_the_prescription(fed):
    app, who = fed.app(), Actors(fed)
    rx_id = await _issue(fed, app, who)
    await call(
        fed,
        app,
        who.patient,
        "circulatePrescription",
        "c-1",
        {"prescriptionId": rx_id, "pharmacyCode": PHARMACY_CODE},
    )
    # Pending: refused, naming the states.
    body = await call(
        fed, app, who.pharmacist, "dispensePrescription", "d-0", dispense_input(rx_id)
    )
    assert problem_paths(body) == {("input", "prescriptionId")}
    assert "needs the prescription APPROVED; it is PENDING_REVIEW" in body["errors"][0]["message"]

    review = {"prescriptionId": rx_id, "pharmacistCode": PHARMACIST, "decision": "APPROVED"}
    payload(
        await call(fed, app, who.hospital_pharmacist, "reviewPrescription", "r-1", review),
        "reviewPrescription",
    )
    # More than prescribed, a drug not prescribed, shares that do not add up: all at once.
    bad = dispense_input(
        rx_id,
        items=[
            {"drugCode": DRUG, "quantity": 3, "amount": "45.00"},
            {"drugCode": DRUG_2, "quantity": 1, "amount": "1.00"},
        ],
        cashPay="1.00",
    )
    body = await call(fed, app, who.pharmacist, "dispensePrescription", "d-1", bad)
    assert problem_paths(body) == {
        ("input", "items", 0, "quantity"),
        ("input", "items", 1, "drugCode"),
        ("input", "cashPay"),
    }
    # Another pharmacy (not the one chosen): the no-oracle refusal.
    body = await call(
        fed, app, who.other_pharmacist, "dispensePrescription", "d-2", dispense_input(rx_id)
    )
    assert problem_paths(body) == {("input", "prescriptionId")}
    assert "no prescription with this id that you may dispense" in body["errors"][0]["message"]

    # Positive control, then the same dispensing again under a new key: refused.
    body = await call(
        fed, app, who.pharmacist, "dispensePrescription", "d-3", dispense_input(rx_id)
    )
    assert payload(body, "dispensePrescription")["prescription"]["status"] == "DISPENSED"
    body = await call(
        fed, app, who.pharmacist, "dispensePrescription", "d-4", dispense_input(rx_id)
    )
    assert "it is DISPENSED" in body["errors"][0]["message"]
    assert len(await rows(fed, PHARMACY, pharmacy.Dispensing, rx_id=rx_id)) == 1
    # Cancelling a dispensed prescription: refused.
    cancel = {"prescriptionId": rx_id, "doctorCode": DOCTOR, "reason": "换药"}
    body = await call(fed, app, who.clinician, "cancelPrescription", "x-1", cancel)
    assert "it is DISPENSED" in body["errors"][0]["message"]


async def test_a_rejected_cancelled_or_expired_prescription_is_never_dispensed(fed):
    app, who = fed.app(), Actors(fed)
    circulate = lambda rx: {"prescriptionId": rx, "pharmacyCode": PHARMACY_CODE}  # noqa: E731
    rejected = await _issue(fed, app, who, "i-1")
    await call(fed, app, who.patient, "circulatePrescription", "c-1", circulate(rejected))
    review = {"prescriptionId": rejected, "pharmacistCode": PHARMACIST, "decision": "REJECTED"}
    body = await call(fed, app, who.hospital_pharmacist, "reviewPrescription", "r-0", review)
    assert problem_paths(body) == {("input", "reason")}  # a rejection gives its reason
    review["reason"] = "剂量超出说明书推荐"
    body = await call(fed, app, who.hospital_pharmacist, "reviewPrescription", "r-1", review)
    assert payload(body, "reviewPrescription")["prescription"]["status"] == "REJECTED"
    body = await call(
        fed, app, who.pharmacist, "dispensePrescription", "d-1", dispense_input(rejected)
    )
    assert "it is REJECTED" in body["errors"][0]["message"]
    body = await call(
        fed,
        app,
        who.hospital_pharmacist,
        "reviewPrescription",
        "r-2",
        {**review, "decision": "APPROVED"},
    )
    assert "it is REJECTED" in body["errors"][0]["message"]  # reviewed once only

    cancelled = await _issue(fed, app, who, "i-2")
    await call(fed, app, who.patient, "circulatePrescription", "c-2", circulate(cancelled))
    cancel = {"prescriptionId": cancelled, "reason": "患者要求"}
    body = await call(fed, app, who.other_clinician, "cancelPrescription", "x-0", cancel)
    assert "you may cancel" in body["errors"][0]["message"]  # another hospital: no oracle
    body = await call(fed, app, who.clinician, "cancelPrescription", "x-1", cancel)
    assert payload(body, "cancelPrescription")["prescription"]["status"] == "CANCELLED"
    body = await call(
        fed, app, who.pharmacist, "dispensePrescription", "d-2", dispense_input(cancelled)
    )
    assert "it is CANCELLED" in body["errors"][0]["message"]

    expired = await _issue(fed, app, who, "i-3")
    await call(fed, app, who.patient, "circulatePrescription", "c-3", circulate(expired))
    await call(
        fed,
        app,
        who.pharmacist,
        "reviewPrescription",
        "r-3",
        {"prescriptionId": expired, "pharmacistCode": PHARMACY_PHARMACIST, "decision": "APPROVED"},
    )
    engine = create_source_engine(fed.settings.source(HOSPITAL))
    async with engine.begin() as conn:
        (row,) = [r for r in await rows(fed, HOSPITAL, hospital.EPrescription, rx_id=expired)]
        await conn.execute(
            update(hospital.EPrescription.__table__)
            .where(hospital.EPrescription.rx_id == expired)
            .values(expires_at=row["issued_at"])
        )
    await engine.dispose()
    body = await call(
        fed, app, who.pharmacist, "dispensePrescription", "d-3", dispense_input(expired)
    )
    assert "has expired" in body["errors"][0]["message"]
    assert await rows(fed, PHARMACY, pharmacy.Dispensing, rx_id=expired) == []


async def test_who_may_issue_review_and_circulate_rests_on_records_of_others(fed):
    app, who = fed.app(), Actors(fed)
    # No bureau visit of the person at the other hospital: refused there, allowed here.
    body = await call(fed, app, who.other_clinician, "issuePrescription", "i-0", issue_input(fed))
    assert problem_paths(body) == {("input", "visitId")}
    body = await call(
        fed, app, who.patient, "issuePrescription", "i-0", issue_input(fed), "PATIENT_ACCESS"
    )
    assert code(body) == "FORBIDDEN"
    rx_id = await _issue(fed, app, who, "i-1")

    # A pharmacy the patient did not choose may not review; neither may a clinician.
    review = {
        "prescriptionId": rx_id,
        "pharmacistCode": PHARMACY_PHARMACIST,
        "decision": "APPROVED",
    }
    body = await call(fed, app, who.pharmacist, "reviewPrescription", "r-0", review)
    assert "you may review" in body["errors"][0]["message"]
    body = await call(fed, app, who.clinician, "reviewPrescription", "r-0", review)
    assert code(body) == "FORBIDDEN"

    # Only the patient circulates their own, once, to a designated pharmacy of the federation.
    other = fed.token("patient", "330106", person="0" * 32)
    circulate = {"prescriptionId": rx_id, "pharmacyCode": PHARMACY_CODE}
    body = await call(fed, app, other, "circulatePrescription", "c-0", circulate)
    assert "you may circulate" in body["errors"][0]["message"]
    body = await call(
        fed,
        app,
        who.patient,
        "circulatePrescription",
        "c-0",
        {**circulate, "pharmacyCode": "P33010600999"},
    )
    assert problem_paths(body) == {("input", "pharmacyCode")}
    body = await call(fed, app, who.patient, "circulatePrescription", "c-1", circulate)
    assert payload(body, "circulatePrescription")["prescription"]["circulatedTo"] == PHARMACY_CODE
    body = await call(fed, app, who.patient, "circulatePrescription", "c-2", circulate)
    assert "circulated already" in body["errors"][0]["message"]
    # Now the chosen pharmacy may review (positive control of the first refusal).
    body = await call(fed, app, who.pharmacist, "reviewPrescription", "r-1", review)
    assert payload(body, "reviewPrescription")["prescription"]["reviewedBy"] == PHARMACY_PHARMACIST


async def test_each_transition_is_idempotent_under_its_key(fed):
    app, who = fed.app(), Actors(fed)
    first = await call(fed, app, who.clinician, "issuePrescription", "i-1", issue_input(fed))
    again = await call(fed, app, who.clinician, "issuePrescription", "i-1", issue_input(fed))
    rx_id = payload(first, "issuePrescription")["prescription"]["prescriptionId"]
    assert payload(again, "issuePrescription")["replayed"] is True
    assert payload(again, "issuePrescription")["prescription"]["prescriptionId"] == rx_id
    assert len(await rows(fed, HOSPITAL, hospital.EPrescription)) == 1
    body = await call(
        fed, app, who.clinician, "issuePrescription", "i-1", issue_input(fed, validDays=2)
    )
    assert code(body) == "IDEMPOTENCY_KEY_REUSED"

    review = {"prescriptionId": rx_id, "pharmacistCode": PHARMACIST, "decision": "APPROVED"}
    one = await call(fed, app, who.hospital_pharmacist, "reviewPrescription", "r-1", review)
    two = await call(fed, app, who.hospital_pharmacist, "reviewPrescription", "r-1", review)
    assert payload(one, "reviewPrescription")["replayed"] is False
    assert payload(two, "reviewPrescription")["replayed"] is True
    events = await rows(fed, HOSPITAL, hospital.PrescriptionEvent, rx_id=rx_id)
    assert sorted(e["kind"] for e in events) == ["ISSUED", "REVIEWED"]


async def test_a_transition_that_lost_a_race_writes_nothing(fed):
    """The compare-and-set: a transition decided on an old version is refused at the source."""
    app, who = fed.app(), Actors(fed)
    rx_id = await _issue(fed, app, who)
    engine = create_source_engine(fed.settings.source(HOSPITAL))
    event = dict(
        event_id="E" + "1" * 27,
        rx_id=rx_id,
        kind="CANCELLED",
        from_status="PENDING_REVIEW",
        to_status="CANCELLED",
        actor_role="clinician",
        actor_org="H33010600001",
        actor_code=DOCTOR,
        at=datetime(2026, 1, 1),
        detail="{}",
        signature=None,
    )
    stale = await rx_writers.transition(engine, rx_id, 0, {"status": "CANCELLED"}, event)
    assert stale is rx_writers.Outcome.CONFLICT
    fresh = await rx_writers.transition(engine, rx_id, 1, {"status": "CANCELLED"}, event)
    assert fresh is rx_writers.Outcome.APPLIED
    again = await rx_writers.transition(engine, rx_id, 1, {"status": "CANCELLED"}, event)
    assert again is rx_writers.Outcome.ALREADY
    await engine.dispose()
    (row,) = await rows(fed, HOSPITAL, hospital.EPrescription, rx_id=rx_id)
    assert (row["status"], row["version"]) == ("CANCELLED", 2)
