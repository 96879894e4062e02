"""Who signs an e-prescription is who the identity provider says the caller is: the token's
``professional`` claim, never a code in the input. A clinician without one, or one who names
another doctor, is refused before anything is written; each professional's own key signs,
and a signature by one professional's key does not pass for another's."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from connectors.sql.engine import create_source_engine
from connectors.sql.models import hospital, pharmacy
from tests.support.mutations import rows, run
from tests.support.prescriptions import (
    DOCTOR,
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

OTHER_DOCTOR = "D330106000999"  # a colleague at the same hospital
READ = """query($id: ID!) { prescription(prescriptionId: $id) { doctorCode doctorSignature
  signatureValid } }"""


@pytest.fixture
async def fed(data_dir):
    return await rx_federation(data_dir)


def _error(body: dict) -> dict:
    assert body.get("data") is None or not any(body["data"].values()), body
    (error,) = body["errors"]
    return error


async def _registration(fed, app, signature: str) -> dict:
    async with fed.client(app, None) as client:
        response = await client.get(f"/keys/professionals/{signature.split(':')[1]}")
    assert response.status_code == 200
    return response.json()


async def test_a_clinician_signs_only_as_the_doctor_the_token_asserts(fed):
    app, who = fed.app(), Actors(fed)
    unnamed = fed.token("clinician", "H33010600001")  # the IdP asserted no doctor code
    for token, data, words in (
        (unnamed, issue_input(fed), "this token names none (claim 'professional'"),
        (unnamed, issue_input(fed, doctorCode=DOCTOR), "this token names none"),
        (who.clinician, issue_input(fed, doctorCode=OTHER_DOCTOR), "input.doctorCode is not"),
    ):
        error = _error(await call(fed, app, token, "issuePrescription", "i-x", data))
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert words in error["message"], error["message"]
        assert OTHER_DOCTOR not in error["message"]
    assert await rows(fed, HOSPITAL, hospital.EPrescription) == []  # nothing was written

    # Positive controls: the token's own code, left out of the input or repeated in it.
    for key, data in (("i-1", issue_input(fed)), ("i-2", issue_input(fed, doctorCode=DOCTOR))):
        rx = payload(
            await call(fed, app, who.clinician, "issuePrescription", key, data), "issuePrescription"
        )["prescription"]
        assert rx["doctorCode"] == DOCTOR
        registration = await _registration(fed, app, rx["doctorSignature"])
        assert (registration["org"], registration["code"]) == ("H33010600001", DOCTOR)
    (event, _) = await rows(fed, HOSPITAL, hospital.PrescriptionEvent)
    assert event["actor_code"] == DOCTOR


async def test_each_doctor_signs_with_a_key_of_their_own(fed):
    app, who = fed.app(), Actors(fed)
    colleague = fed.token("clinician", "H33010600001", professional=OTHER_DOCTOR)
    signatures = {}
    for doctor, token in ((DOCTOR, who.clinician), (OTHER_DOCTOR, colleague)):
        body = await call(fed, app, token, "issuePrescription", f"i-{doctor}", issue_input(fed))
        rx = payload(body, "issuePrescription")["prescription"]
        assert rx["doctorCode"] == doctor
        registration = await _registration(fed, app, rx["doctorSignature"])
        assert registration["code"] == doctor
        signatures[doctor] = rx
    key_ids = {rx["doctorSignature"].split(":")[1] for rx in signatures.values()}
    assert len(key_ids) == 2

    # A prescription moved to another doctor at its source no longer verifies: the key that
    # signed it is registered to the first doctor, not to the one the row now names.
    rx_id = signatures[DOCTOR]["prescriptionId"]
    read = await run(fed, app, who.clinician, "TREATMENT", READ, {"id": rx_id})
    assert read["data"]["prescription"]["signatureValid"] is True  # positive control
    engine = create_source_engine(fed.settings.source(HOSPITAL))
    async with engine.begin() as conn:
        await conn.execute(
            update(hospital.EPrescription.__table__)
            .where(hospital.EPrescription.rx_id == rx_id)
            .values(doctor_code=OTHER_DOCTOR)
        )
    await engine.dispose()
    read = await run(fed, app, who.clinician, "TREATMENT", READ, {"id": rx_id})
    assert read["data"]["prescription"]["signatureValid"] is False


async def test_pharmacists_review_dispense_and_doctors_cancel_only_as_themselves(fed):
    app, who = fed.app(), Actors(fed)
    rx_id = payload(
        await call(fed, app, who.clinician, "issuePrescription", "i-1", issue_input(fed)),
        "issuePrescription",
    )["prescription"]["prescriptionId"]
    circulate = {"prescriptionId": rx_id, "pharmacyCode": PHARMACY_CODE}
    payload(
        await call(fed, app, who.patient, "circulatePrescription", "c-1", circulate),
        "circulatePrescription",
    )
    unnamed = fed.token("pharmacist", PHARMACY_CODE)
    review = {"prescriptionId": rx_id, "decision": "APPROVED"}
    refused = [
        (unnamed, "reviewPrescription", review, "this token names none"),
        (
            who.pharmacist,
            "reviewPrescription",
            {**review, "pharmacistCode": PHARMACIST},
            "input.pharmacistCode is not",
        ),
    ]
    for token, name, data, words in refused:
        error = _error(await call(fed, app, token, name, "r-x", data))
        assert error["extensions"]["code"] == "FORBIDDEN" and words in error["message"]
    events = await rows(fed, HOSPITAL, hospital.PrescriptionEvent, rx_id=rx_id)
    assert sorted(e["kind"] for e in events) == ["CIRCULATED", "ISSUED"]

    body = await call(fed, app, who.pharmacist, "reviewPrescription", "r-1", review)
    assert payload(body, "reviewPrescription")["prescription"]["reviewedBy"] == PHARMACY_PHARMACIST

    for token, data, words in (
        (unnamed, dispense_input(rx_id), "this token names none"),
        (
            who.pharmacist,
            dispense_input(rx_id, pharmacistCode=PHARMACIST),
            "is not the professional",
        ),
    ):
        error = _error(await call(fed, app, token, "dispensePrescription", "d-x", data))
        assert error["extensions"]["code"] == "FORBIDDEN" and words in error["message"]
    assert await rows(fed, PHARMACY, pharmacy.Dispensing, rx_id=rx_id) == []
    body = await call(
        fed, app, who.pharmacist, "dispensePrescription", "d-1", dispense_input(rx_id)
    )
    assert payload(body, "dispensePrescription")["prescription"]["status"] == "DISPENSED"
    (dispensing,) = await rows(fed, PHARMACY, pharmacy.Dispensing, rx_id=rx_id)
    assert dispensing["pharmacist_code"] == PHARMACY_PHARMACIST


async def test_cancelling_is_signed_by_the_cancelling_doctor(fed):
    app, who = fed.app(), Actors(fed)
    rx_id = payload(
        await call(fed, app, who.clinician, "issuePrescription", "i-1", issue_input(fed)),
        "issuePrescription",
    )["prescription"]["prescriptionId"]
    cancel = {"prescriptionId": rx_id, "reason": "换药"}
    unnamed = fed.token("clinician", "H33010600001")
    error = _error(await call(fed, app, unnamed, "cancelPrescription", "x-0", cancel))
    assert error["extensions"]["code"] == "FORBIDDEN"
    colleague = fed.token("clinician", "H33010600001", professional=OTHER_DOCTOR)
    body = await call(fed, app, colleague, "cancelPrescription", "x-1", cancel)
    assert payload(body, "cancelPrescription")["prescription"]["status"] == "CANCELLED"
    events = await rows(fed, HOSPITAL, hospital.PrescriptionEvent, rx_id=rx_id)
    (cancelled,) = [e for e in events if e["kind"] == "CANCELLED"]
    assert cancelled["actor_code"] == OTHER_DOCTOR
    registration = await _registration(fed, app, cancelled["signature"])
    assert registration["code"] == OTHER_DOCTOR
