"""publishTestResult through the HTTP app: validation, idempotency, roles, and reading the
published result back through testResults."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from connectors.sql.engine import create_source_engine
from connectors.sql.models import hospital
from security.idempotency import IdempotencyKeyRow
from security.identity import ensure_demo_issuer
from tests.support.federation import RECENT_VISIT, Federation, make_id_number
from tests.support.mutations import RECENT, code, count, only_error, problem_paths, rows, run
from tests.support.postgres import PG_URL

HOSPITAL = "hospital-h33010600001"
PUBLISH = """mutation($key: String!, $input: PublishTestResultInput!) {
  publishTestResult(idempotencyKey: $key, input: $input) {
    replayed
    testResult { resultId personId category itemCode itemName value unit flag
      referenceRange { low high } modality bodyPart findings impression studyUid
      performingInstitutionCode visitId orderingDoctor collectedAt reportedAt }
  } }"""
RESULTS = """query($id: ID!) { testResults(personId: $id) { nodes {
  resultId itemCode value flag findings performingInstitution { code }
  recognition { recognized reason } } } }"""


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    fed.id_number = make_id_number()
    fed.ref = await fed.add_person(fed.id_number, "王五")
    # A recent visit at the publishing hospital, recorded by the bureau: it treats the person,
    # and each result names that visit.
    fed.visit_ids = await fed.add_visits(fed.ref, 1, with_prescriptions=False, begin=RECENT_VISIT)
    return fed


def lab(**changes) -> dict:
    data = {
        "category": "LAB",
        "itemName": "葡萄糖",
        "loincCode": "2345-7",
        "value": 7.2,
        "unit": "mmol/L",
        "referenceRange": {"low": 3.9, "high": 6.1},
        "collectedAt": (RECENT - timedelta(hours=2)).isoformat(),
        "reportedAt": RECENT.isoformat(),
        "orderingDoctor": "D330106000123",
    }
    return {**data, **changes}


def clinician(fed, org: str = "H33010600001") -> str:
    return fed.token("clinician", org)


async def publish(fed, app, key: str, data: dict, token: str | None = None) -> dict:
    """Publish ``data``, naming the fixture's visit unless the data names one (or None)."""
    data = {"visitId": fed.visit_ids[0], **data}
    return await run(
        fed, app, token or clinician(fed), "TREATMENT", PUBLISH, {"key": key, "input": data}
    )


async def test_published_lab_result_is_stored_encrypted_and_readable_by_another_hospital(fed):
    app = fed.app()
    body = await publish(fed, app, "lab-1", lab(idNumber=fed.id_number))
    assert "errors" not in body, body
    out = body["data"]["publishTestResult"]
    result = out["testResult"]
    assert out["replayed"] is False
    assert result["personId"] == fed.ref
    assert result["flag"] == "H"  # 7.2 above 6.1: derived, not given
    assert result["referenceRange"] == {"low": 3.9, "high": 6.1}
    assert result["performingInstitutionCode"] == "H33010600001"

    # The hospital did not know the person: a patient-index row now links them, its name and
    # ID number sealed under the hospital's key and bound to that row.
    (patient,) = await rows(fed, HOSPITAL, hospital.Patient, person_ref=fed.ref)
    assert (
        fed.cipher.decrypt(
            patient["name_enc"],
            source=HOSPITAL,
            table="patients",
            column="name_enc",
            row_key=patient["patient_no"],
        )
        == "王五"
    )
    assert (
        fed.cipher.decrypt(
            patient["id_number_enc"],
            source=HOSPITAL,
            table="patients",
            column="id_number_enc",
            row_key=patient["patient_no"],
        )
        == fed.id_number
    )

    # Readable through testResults: by the hospital (it performed the test, so it treats the
    # person) and by the patient; other hospitals need a consent (test_mutations_consents).
    read = await run(fed, app, clinician(fed), "TREATMENT", RESULTS, {"id": fed.ref})
    nodes = read["data"]["testResults"]["nodes"]
    assert [n["resultId"] for n in nodes] == [result["resultId"]]
    assert nodes[0]["value"] == 7.2 and nodes[0]["itemCode"] == "2345-7"
    assert nodes[0]["performingInstitution"]["code"] == "H33010600001"
    patient = fed.token("patient", "330106", person=fed.ref)
    own = await run(fed, app, patient, "PATIENT_ACCESS", RESULTS, {"id": fed.ref})
    assert [n["flag"] for n in own["data"]["testResults"]["nodes"]] == ["H"]


async def test_published_imaging_result_keeps_findings_encrypted(fed):
    app = fed.app()
    data = {
        "category": "IMAGING",
        "personId": fed.ref,
        "itemName": "胸部CT",
        "modality": "CT",
        "bodyPart": "胸部",
        "findings": "右肺上叶见小结节",
        "impression": "右肺小结节，建议随访",
        "studyUid": "1.2.156.112605.14.2026.1",
        "collectedAt": RECENT.isoformat(),
        "reportedAt": RECENT.isoformat(),
        "orderingDoctor": "DH33010600001007",
        "visitId": fed.visit_ids[0],
    }
    body = await publish(fed, app, "ct-1", data)
    assert "errors" not in body, body
    result = body["data"]["publishTestResult"]["testResult"]
    assert result["findings"] == "右肺上叶见小结节"
    assert result["itemCode"] == "CT" and result["visitId"] == fed.visit_ids[0]
    (row,) = await rows(fed, HOSPITAL, hospital.TestResult, result_id=result["resultId"])
    assert "右肺".encode() not in row["findings_enc"]
    assert (
        fed.cipher.decrypt(
            row["impression_enc"],
            source=HOSPITAL,
            table="test_results",
            column="impression_enc",
            row_key=row["result_id"],
        )
        == "右肺小结节，建议随访"
    )


async def test_every_bad_field_is_listed_in_one_error_and_nothing_is_written(fed):
    app = fed.app()
    bad_id = fed.id_number[:17] + ("0" if fed.id_number[17] != "0" else "1")
    future = (RECENT + timedelta(days=5)).isoformat()
    body = await publish(
        fed,
        app,
        "bad key!",
        lab(
            idNumber=bad_id,
            loincCode="2345-8",
            referenceRange={"low": 7.0, "high": 3.0},
            collectedAt=future,
            reportedAt=future,
            orderingDoctor="dr who",
            studyUid="1.2.3",
            unit="",
        ),
    )
    assert problem_paths(body) == {
        ("idempotencyKey",),
        ("input", "idNumber"),
        ("input", "loincCode"),
        ("input", "unit"),
        ("input", "referenceRange", "high"),
        ("input", "studyUid"),
        ("input", "collectedAt"),
        ("input", "reportedAt"),
        ("input", "orderingDoctor"),
    }
    assert bad_id not in str(body)  # reasons never repeat personal values
    assert await count(fed, HOSPITAL, hospital.TestResult) == 0
    assert await count(fed, HOSPITAL, hospital.Patient) == 0
    assert await count(fed, "gateway", IdempotencyKeyRow) == 0


async def test_category_rules_person_choice_times_and_flag_are_checked(fed):
    app = fed.app()
    body = await publish(
        fed,
        app,
        "mixed",
        {
            "category": "IMAGING",
            "personId": fed.ref,
            "idNumber": fed.id_number,
            "itemName": "x" * 65,
            "loincCode": "2345-7",
            "modality": "MR",
            "bodyPart": "头部",
            "findings": " ",
            "impression": "未见异常",
            "studyUid": "1.02.3",
            "collectedAt": RECENT.isoformat(),
            "reportedAt": (RECENT - timedelta(hours=1)).isoformat(),
            "orderingDoctor": "D330106000123",
        },
    )
    assert problem_paths(body) == {
        ("input", "personId"),
        ("input", "itemName"),
        ("input", "loincCode"),
        ("input", "findings"),
        ("input", "studyUid"),
        ("input", "collectedAt"),
    }
    body = await publish(fed, app, "flag", lab(personId=fed.ref, flag="N"))
    assert problem_paths(body) == {("input", "flag")}
    assert "H" in only_error(body)["extensions"]["problems"][0]["reason"]
    assert await count(fed, HOSPITAL, hospital.TestResult) == 0


async def test_unknown_person_and_foreign_visit_are_refused(fed):
    # An unknown person gets the same one problem as a known person without a visit: the
    # answer says nothing about who is insured.
    app = fed.app()
    stranger = make_id_number(seq=777)
    body = await publish(fed, app, "who", lab(idNumber=stranger))
    assert problem_paths(body) == {("input", "visitId")}
    body = await publish(fed, app, "visit", lab(personId=fed.ref, visitId="MD0000000000"))
    assert problem_paths(body) == {("input", "visitId")}
    assert await count(fed, HOSPITAL, hospital.Patient) == 0


async def test_same_key_same_input_publishes_once(fed):
    app = fed.app()
    first = await publish(fed, app, "once", lab(personId=fed.ref))
    again = await publish(fed, app, "once", lab(personId=fed.ref))
    assert "errors" not in again, again
    assert again["data"]["publishTestResult"]["replayed"] is True
    assert (
        again["data"]["publishTestResult"]["testResult"]
        == first["data"]["publishTestResult"]["testResult"]
    )
    assert await count(fed, HOSPITAL, hospital.TestResult) == 1
    assert await count(fed, "gateway", IdempotencyKeyRow) == 1


async def test_same_key_other_input_is_refused(fed):
    app = fed.app()
    await publish(fed, app, "once", lab(personId=fed.ref))
    body = await publish(fed, app, "once", lab(personId=fed.ref, value=5.0))
    assert code(body) == "IDEMPOTENCY_KEY_REUSED"
    assert await count(fed, HOSPITAL, hospital.TestResult) == 1


async def test_racing_twins_converge_on_one_row(fed):
    app = fed.app()
    answers = await asyncio.gather(
        *(publish(fed, app, "race", lab(personId=fed.ref)) for _ in range(4))
    )
    assert all("errors" not in a for a in answers), [a.get("errors") for a in answers]
    ids = {a["data"]["publishTestResult"]["testResult"]["resultId"] for a in answers}
    assert len(ids) == 1
    assert await count(fed, HOSPITAL, hospital.TestResult) == 1
    assert await count(fed, HOSPITAL, hospital.Patient) == 1


async def test_keys_belong_to_their_caller(fed):
    # Two clinicians of one hospital may pick the same key: their requests are unrelated.
    app = fed.app()
    issuer = ensure_demo_issuer(fed.data_dir)
    dr_wang = issuer.mint(role="clinician", org="H33010600001", sub="dr-wang")
    dr_li = issuer.mint(role="clinician", org="H33010600001", sub="dr-li")
    first = await publish(fed, app, "k", lab(personId=fed.ref), dr_wang)
    second = await publish(fed, app, "k", lab(personId=fed.ref, value=5.0), dr_li)
    assert "errors" not in first and "errors" not in second, second
    assert (
        first["data"]["publishTestResult"]["testResult"]["resultId"]
        != second["data"]["publishTestResult"]["testResult"]["resultId"]
    )
    assert await count(fed, HOSPITAL, hospital.TestResult) == 2


@pytest.mark.parametrize(
    ("role", "org", "person"),
    [
        ("patient", "330106", True),
        ("pharmacist", "P33010600101", False),
        ("clinician", "H11010100009", False),  # a hospital that is no source of this federation
    ],
)
async def test_only_clinicians_of_a_source_hospital_publish(fed, role, org, person):
    app = fed.app()
    token = fed.token(role, org, person=fed.ref if person else None)
    purpose = "PATIENT_ACCESS" if role == "patient" else "TREATMENT"
    body = await run(
        fed, app, token, purpose, PUBLISH, {"key": "k", "input": lab(personId=fed.ref)}
    )
    assert code(body) == "FORBIDDEN"
    assert await count(fed, HOSPITAL, hospital.TestResult) == 0


async def test_a_retry_after_a_crash_converges_on_the_first_row(fed):
    # The write reached the hospital but the gateway never marked the key done (a crash in
    # between): the retry redoes the write, lands on the same row and finishes the key.
    app = fed.app()
    first = await publish(fed, app, "crash", lab(personId=fed.ref))
    engine = create_source_engine(fed.settings.gateway_spec)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(IdempotencyKeyRow.__table__).values(completed_at=None))
    finally:
        await engine.dispose()
    retry = await publish(fed, app, "crash", lab(personId=fed.ref))
    assert "errors" not in retry, retry
    assert (
        retry["data"]["publishTestResult"]["testResult"]["resultId"]
        == first["data"]["publishTestResult"]["testResult"]["resultId"]
    )
    assert await count(fed, HOSPITAL, hospital.TestResult) == 1
    (key,) = await rows(fed, "gateway", IdempotencyKeyRow)
    assert key["completed_at"] is not None


async def test_racing_twins_converge_on_postgresql(data_dir, pg_schema):
    fed = Federation(data_dir, pg_schema=pg_schema, pg_url=PG_URL)
    try:
        await fed.setup()
        ref = await fed.add_person(make_id_number(), "王五")
        fed.visit_ids = await fed.add_visits(ref, 1, with_prescriptions=False, begin=RECENT_VISIT)
        app = fed.app()
        answers = await asyncio.gather(
            *(publish(fed, app, "race", lab(personId=ref)) for _ in range(4))
        )
        assert len({a["data"]["publishTestResult"]["testResult"]["resultId"] for a in answers}) == 1
        assert await count(fed, HOSPITAL, hospital.TestResult) == 1
        assert await count(fed, HOSPITAL, hospital.Patient) == 1
    finally:
        engine = create_source_engine(fed.settings.source(HOSPITAL))
        try:
            async with engine.begin() as conn:
                for spec in fed.settings.sources:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{spec.schema}" CASCADE'))
        finally:
            await engine.dispose()
