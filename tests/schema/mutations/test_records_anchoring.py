"""Anchoring through the API: a published record is VERIFIED on read and proven in the
records log; changed at its source it reads CHANGED and `medfed records verify` names it; a
record that never came through a mutation is UNANCHORED."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from sqlalchemy import update

from connectors.sql.engine import create_source_engine
from connectors.sql.models import hospital
from security.audit import merkle
from tests.support.demo import medfed
from tests.support.mutations import run
from tests.support.prescriptions import HOSPITAL, Actors, call, issue_input, payload, rx_federation

READ = "query($id: ID!) { prescription(prescriptionId: $id) { integrity signatureValid } }"
RESULTS = "query($id: ID!) { testResults(personId: $id) { nodes { resultId integrity } } }"
PROOF = """query($id: ID!) { recordProof(kind: "e_prescriptions", recordId: $id) {
  source index entry leafHash treeSize rootHash path checkpoint } }"""


@pytest.fixture
async def fed(data_dir):
    return await rx_federation(data_dir)


async def _records_verify(fed, capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = await asyncio.to_thread(medfed, fed.data_dir, "records", "verify", "--json")
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


async def test_a_changed_record_is_found_on_read_and_named_by_records_verify(fed, capsys):
    app, who = fed.app(), Actors(fed)
    body = await call(fed, app, who.clinician, "issuePrescription", "i-1", issue_input(fed))
    rx_id = payload(body, "issuePrescription")["prescription"]["prescriptionId"]
    read = await run(fed, app, who.clinician, "TREATMENT", READ, {"id": rx_id})
    assert read["data"]["prescription"] == {"integrity": "VERIFIED", "signatureValid": True}
    code, report = await _records_verify(fed, capsys)
    assert code == 0 and report["logValid"] and report["records"] == 2  # prescription, ISSUED
    assert report["changed"] == [] and report["missing"] == []

    # The proof: the leaf is in the tree the signed checkpoint names.
    proof = (await run(fed, app, who.clinician, "TREATMENT", PROOF, {"id": rx_id}))["data"]
    (p,) = proof["recordProof"]
    leaf = merkle.leaf_hash(p["entry"].encode())
    assert base64.b64encode(leaf).decode() == p["leafHash"]
    path = [base64.b64decode(x) for x in p["path"]]
    root = base64.b64decode(p["rootHash"])
    assert merkle.verify_inclusion(p["index"], p["treeSize"], leaf, path, root)
    assert p["rootHash"] in p["checkpoint"]
    # Another hospital is not this record's holder: no proof for it.
    other = await run(fed, app, who.other_clinician, "TREATMENT", PROOF, {"id": rx_id})
    assert other["data"]["recordProof"] == []

    engine = create_source_engine(fed.settings.source(HOSPITAL))
    async with engine.begin() as conn:
        await conn.execute(
            update(hospital.EPrescriptionItem.__table__)
            .where(hospital.EPrescriptionItem.rx_id == rx_id)
            .values(days=90)
        )
    await engine.dispose()
    read = await run(fed, app, who.clinician, "TREATMENT", READ, {"id": rx_id})
    assert read["data"]["prescription"] == {"integrity": "CHANGED", "signatureValid": False}
    code, report = await _records_verify(fed, capsys)
    assert code == 1 and report["logValid"]  # the log itself is intact
    assert report["changed"] == [["e_prescriptions", HOSPITAL, rx_id]]


async def test_a_workflow_step_keeps_the_prescription_verified_and_is_anchored_itself(fed, capsys):
    app, who = fed.app(), Actors(fed)
    body = await call(fed, app, who.clinician, "issuePrescription", "i-1", issue_input(fed))
    rx_id = payload(body, "issuePrescription")["prescription"]["prescriptionId"]
    review = {"prescriptionId": rx_id, "pharmacistCode": "YH33010600001001", "decision": "APPROVED"}
    payload(
        await call(fed, app, who.hospital_pharmacist, "reviewPrescription", "r-1", review),
        "reviewPrescription",
    )
    read = await run(fed, app, who.clinician, "TREATMENT", READ, {"id": rx_id})
    assert read["data"]["prescription"]["integrity"] == "VERIFIED"  # workflow columns moved
    code, report = await _records_verify(fed, capsys)
    assert code == 0 and report["records"] == 3


async def test_published_results_are_verified_and_a_result_written_outside_is_unanchored(fed):
    from tests.support.federation import RECENT_VISIT  # noqa: F401 (the fixture's visit)

    app, who = fed.app(), Actors(fed)
    await fed.add_result(fed.ref)  # written at the source directly, as the demo's rows are
    lab = {
        "category": "LAB",
        "itemName": "葡萄糖",
        "loincCode": "2345-7",
        "value": 7.2,
        "unit": "mmol/L",
        "collectedAt": "2026-11-20T08:00:00+08:00",
        "reportedAt": "2026-11-20T09:00:00+08:00",
        "orderingDoctor": "D330106000123",
        "personId": fed.ref,
        "visitId": fed.visit_ids[0],
    }
    query = """mutation($k: String!, $input: PublishTestResultInput!) {
      publishTestResult(idempotencyKey: $k, input: $input) { testResult { resultId } } }"""
    body = await run(fed, app, who.clinician, "TREATMENT", query, {"k": "p-1", "input": lab})
    published = body["data"]["publishTestResult"]["testResult"]["resultId"]
    nodes = (await run(fed, app, who.clinician, "TREATMENT", RESULTS, {"id": fed.ref}))["data"][
        "testResults"
    ]["nodes"]
    assert {n["resultId"]: n["integrity"] for n in nodes}[published] == "VERIFIED"
    assert sorted(n["integrity"] for n in nodes) == ["UNANCHORED", "VERIFIED"]
