"""Driving the e-prescription workflow through the HTTP app: one federation with a patient
who has a recent bureau visit at hospital H33010600001, and one call per transition."""

from __future__ import annotations

from typing import Any

from tests.support.federation import RECENT_VISIT, Federation, make_id_number
from tests.support.mutations import run

HOSPITAL = "hospital-h33010600001"
PHARMACY = "pharmacy-p33010600101"
PHARMACY_CODE = "P33010600101"
DOCTOR = "D330106000123"
PHARMACIST = "YH33010600001001"
PHARMACY_PHARMACIST = "YP33010600101001"
DRUG = "XC08CAA067A001010104163"
DRUG_2 = "XA10BAE054A001010101445"

FIELDS = """prescription { prescriptionId visitId institutionCode doctorCode doctorSignature
  status reviewStatus reviewedBy circulatedTo issuedAt expiresAt
  items { drugCode quantity days } } replayed"""
MUTATION = """mutation($key: String!, $input: {type}!) {{
  {name}(idempotencyKey: $key, input: $input) {{ {fields} }} }}"""
INPUTS = {
    "issuePrescription": "IssuePrescriptionInput",
    "reviewPrescription": "ReviewPrescriptionInput",
    "circulatePrescription": "CirculatePrescriptionInput",
    "dispensePrescription": "DispensePrescriptionInput",
    "shipPrescription": "DeliveryInput",
    "deliverPrescription": "DeliveryInput",
    "cancelPrescription": "CancelPrescriptionInput",
}


async def rx_federation(data_dir) -> Federation:
    fed = await Federation(data_dir).setup()
    fed.id_number = make_id_number()
    fed.ref = await fed.add_person(fed.id_number, "王五")
    fed.visit_ids = await fed.add_visits(fed.ref, 1, with_prescriptions=False, begin=RECENT_VISIT)
    return fed


class Actors:
    """The tokens of the workflow's parties."""

    def __init__(self, fed: Federation) -> None:
        # Each professional's token asserts their own code: the one they sign as.
        self.clinician = fed.token("clinician", "H33010600001", professional=DOCTOR)
        self.hospital_pharmacist = fed.token("pharmacist", "H33010600001", professional=PHARMACIST)
        self.pharmacist = fed.token("pharmacist", PHARMACY_CODE, professional=PHARMACY_PHARMACIST)
        self.other_pharmacist = fed.token(
            "pharmacist", "P37010200102", professional="YP37010200102001"
        )
        self.patient = fed.token("patient", "330106", person=fed.ref)
        self.other_clinician = fed.token("clinician", "H33020300002", professional="D330203000456")


async def call(
    fed: Federation, app: Any, token: str, name: str, key: str, data: dict, purpose: str = ""
) -> dict:
    query = MUTATION.format(type=INPUTS[name], name=name, fields=FIELDS)
    purpose = purpose or ("PATIENT_ACCESS" if name == "circulatePrescription" else "TREATMENT")
    return await run(fed, app, token, purpose, query, {"key": key, "input": data})


def issue_input(fed: Federation, **changes: Any) -> dict:
    data = {
        "personId": fed.ref,
        "visitId": fed.visit_ids[0],
        "items": [
            {
                "drugCode": DRUG,
                "drugName": "苯磺酸氨氯地平片",
                "quantity": 2,
                "unit": "盒",
                "dosage": "5mg 每日1次 口服",
                "days": 28,
            }
        ],
    }
    return {**data, **changes}


def dispense_input(rx_id: str, **changes: Any) -> dict:
    data = {
        "prescriptionId": rx_id,
        "certType": "01",
        "items": [{"drugCode": DRUG, "quantity": 2, "amount": "45.00"}],
        "fundPay": "30.00",
        "accountPay": "10.00",
        "cashPay": "5.00",
        "homeDelivery": True,
        "deliveryFee": "8.00",
    }
    return {**data, **changes}


def payload(body: dict, name: str) -> dict:
    assert "errors" not in body, body
    return body["data"][name]
