"""Signatures of e-prescriptions as a third party checks them: the doctor's key fetched from
GET /keys/professionals/{keyId}, the canonical form rebuilt from the documented fields, and
OpenSSL (not our code) verifying; `signatureValid` and `medfed rx verify` turn false when the
record is changed at its source."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess

import pytest
from sqlalchemy import update

from connectors.domain.prescriptions import event_document, prescription_document
from connectors.sql.engine import create_source_engine
from connectors.sql.models import hospital
from tests.support.demo import medfed
from tests.support.mutations import rows, run
from tests.support.prescriptions import HOSPITAL, Actors, call, issue_input, payload, rx_federation

READ = """query($id: ID!) { prescription(prescriptionId: $id) { doctorSignature signatureValid
  status } }"""


@pytest.fixture
async def fed(data_dir):
    return await rx_federation(data_dir)


def _openssl_ed25519(tmp_path, pem: str, signature: str, message: bytes) -> bool:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed: run `make install`"
    (tmp_path / "pub.pem").write_text(pem)
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(base64.b64decode(signature.split(":")[2]))
    result = subprocess.run(
        [
            openssl,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(tmp_path / "pub.pem"),
            "-rawin",
            "-in",
            str(tmp_path / "msg"),
            "-sigfile",
            str(tmp_path / "sig"),
        ],
        capture_output=True,
        text=True,
    )
    return result.returncode == 0 and "Verified Successfully" in result.stdout


async def test_a_third_party_verifies_the_doctors_and_the_pharmacists_signatures(fed, tmp_path):
    app, who = fed.app(), Actors(fed)
    body = await call(fed, app, who.clinician, "issuePrescription", "i-1", issue_input(fed))
    rx_id = payload(body, "issuePrescription")["prescription"]["prescriptionId"]
    review = {"prescriptionId": rx_id, "pharmacistCode": "YH33010600001001", "decision": "APPROVED"}
    payload(
        await call(fed, app, who.hospital_pharmacist, "reviewPrescription", "r-1", review),
        "reviewPrescription",
    )
    (rx,) = await rows(fed, HOSPITAL, hospital.EPrescription, rx_id=rx_id)
    items = await rows(fed, HOSPITAL, hospital.EPrescriptionItem, rx_id=rx_id)
    events = sorted(
        await rows(fed, HOSPITAL, hospital.PrescriptionEvent, rx_id=rx_id), key=lambda e: e["seq"]
    )
    async with fed.client(app, None) as client:
        for signature, message, signer in (
            (rx["doctor_signature"], prescription_document(rx, items), "D330106000123"),
            (
                events[1]["signature"],
                event_document(events[1], rx["doctor_signature"]),
                "YH33010600001001",
            ),
        ):
            key_id = signature.split(":")[1]
            response = await client.get(f"/keys/professionals/{key_id}")
            assert response.status_code == 200
            registration = response.json()
            assert registration["org"] == "H33010600001"
            assert registration["code"] == signer
            assert _openssl_ed25519(tmp_path, registration["publicKeyPem"], signature, message)
        assert (await client.get("/keys/professionals/0123456789abcdef")).status_code == 404

    read = await run(fed, app, who.clinician, "TREATMENT", READ, {"id": rx_id})
    assert read["data"]["prescription"]["signatureValid"] is True
    assert await asyncio.to_thread(medfed, fed.data_dir, "rx", "verify", rx_id) == 0

    # Changed at the source after signing (one more box): found by both.
    engine = create_source_engine(fed.settings.source(HOSPITAL))
    async with engine.begin() as conn:
        await conn.execute(
            update(hospital.EPrescriptionItem.__table__)
            .where(hospital.EPrescriptionItem.rx_id == rx_id)
            .values(quantity=3)
        )
    await engine.dispose()
    read = await run(fed, app, who.clinician, "TREATMENT", READ, {"id": rx_id})
    assert read["data"]["prescription"]["signatureValid"] is False
    assert await asyncio.to_thread(medfed, fed.data_dir, "rx", "verify", rx_id) == 1
    assert (
        await asyncio.to_thread(medfed, fed.data_dir, "rx", "verify", "RX0000000000000") == 1
    )  # not found
