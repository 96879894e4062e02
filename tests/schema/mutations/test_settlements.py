"""recordSettlement through the HTTP app: arithmetic, where it is written (bureau or
platform), the filing a cross-province settlement needs, roles and idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.sql.models import bureau, platform
from security.idempotency import IdempotencyKeyRow
from tests.support.federation import Federation, make_id_number
from tests.support.mutations import RECENT, code, count, file_for_care, problem_paths, rows, run

RECORD = """mutation($key: String!, $input: RecordSettlementInput!) {
  recordSettlement(idempotencyKey: $key, input: $input) {
    replayed
    settlement { settlementId visitId personId institutionCode medicalType settledAt
      insuredRegion treatmentRegion total inPolicy fundPay accountPay cashPay
      crossProvince clearingStatus clearingMonth filingId integrity }
  } }"""


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    # 张三 is insured in Hangzhou and treated there; 李四 is insured in Changchun (Jilin) and
    # treated in Hangzhou, which is cross-province.
    fed.local = await fed.add_person(make_id_number(), "张三")
    (fed.local_visit,) = await fed.add_visits(fed.local, 1, with_prescriptions=False)
    fed.remote = await fed.add_person(
        make_id_number("220102", seq=456), "李四", source="bureau-220000", region="220102"
    )
    (fed.remote_visit,) = await fed.add_visits(
        fed.remote, 1, insured="220102", with_prescriptions=False
    )
    return fed


def local(fed, **changes) -> dict:
    data = {
        "personId": fed.local,
        "visitId": fed.local_visit,
        "institutionCode": "H33010600001",
        "medicalType": "OUTPATIENT",
        "settledAt": RECENT.isoformat(),
        "insuredRegion": "330106",
        "treatmentRegion": "330106",
        "total": "320.50",
        "inPolicy": "300.00",
    }
    return {**data, **changes}


def remote(fed, **changes) -> dict:
    return local(
        fed,
        personId=fed.remote,
        visitId=fed.remote_visit,
        insuredRegion="220102",
        medicalType="INPATIENT",
        **changes,
    )


def agency(fed, org: str = "330000") -> str:
    return fed.token("insurance_agency", org)


async def record(
    fed, app, key: str, data: dict, token: str | None = None, purpose: str = "SETTLEMENT"
) -> dict:
    return await run(fed, app, token or agency(fed), purpose, RECORD, {"key": key, "input": data})


async def file_for(fed, app, ref: str) -> str:
    return await file_for_care(fed, app, ref)


async def test_in_province_settlement_is_written_to_the_treatment_bureau(fed):
    app = fed.app()
    body = await record(fed, app, "s-1", local(fed))
    assert "errors" not in body, body
    s = body["data"]["recordSettlement"]["settlement"]
    # Hangzhou's employee outpatient scheme: 200 yuan deductible a year, 60 % at a tertiary
    # hospital; the personal account pays the rest within policy, cash what is outside it.
    assert s["total"] == "320.50" and s["accountPay"] == "240.00"
    assert s["crossProvince"] is False and s["clearingStatus"] == "PENDING"
    (row,) = await rows(fed, "bureau-330000", bureau.Settlement)
    assert row["setl_id"] == s["settlementId"]
    assert (row["total_fen"], row["fund_pay_fen"], row["acct_pay_fen"], row["cash_pay_fen"]) == (
        32050,
        6000,
        24000,
        2050,
    )
    assert await count(fed, "platform", platform.CrossSettlement) == 0

    listed = await run(
        fed,
        app,
        agency(fed),
        "SETTLEMENT",
        """query($id: ID!) {
        settlements(filter: {personId: $id}) { nodes { settlementId total integrity } } }""",
        {"id": fed.local},
    )
    # Anchored in the records log when it was recorded, unchanged since (docs/prescriptions.md).
    assert listed["data"]["settlements"]["nodes"] == [
        {"settlementId": s["settlementId"], "total": "320.50", "integrity": "VERIFIED"}
    ]


async def test_amounts_that_do_not_add_up_name_each_field(fed):
    app = fed.app()
    split = {"fundPay": "60.00", "accountPay": "240.00", "cashPay": "20.50"}
    body = await record(fed, app, "s-1", local(fed, total="321.00", inPolicy="400", **split))
    assert problem_paths(body) == {
        ("input", "total"),
        ("input", "fundPay"),
        ("input", "accountPay"),
        ("input", "cashPay"),
        ("input", "inPolicy"),
    }
    body = await record(
        fed, app, "s-1", local(fed, fundPay="-1", cashPay="20.501", accountPay="NaN")
    )
    assert problem_paths(body) == {
        ("input", "fundPay"),
        ("input", "cashPay"),
        ("input", "accountPay"),
    }
    assert await count(fed, "bureau-330000", bureau.Settlement) == 0
    assert await count(fed, "gateway", IdempotencyKeyRow) == 0


async def test_every_bad_field_is_listed_in_one_error(fed):
    app = fed.app()
    body = await record(
        fed,
        app,
        "s-1",
        local(
            fed,
            personId="not-a-person",
            visitId="MD/1",
            institutionCode="H3301060000",
            insuredRegion="990000",
            treatmentRegion="33010",
            settledAt=(RECENT + timedelta(days=9)).isoformat(),
        ),
    )
    assert problem_paths(body) == {
        ("input", "personId"),
        ("input", "visitId"),
        ("input", "institutionCode"),
        ("input", "insuredRegion"),
        ("input", "treatmentRegion"),
        ("input", "settledAt"),
    }
    assert await count(fed, "bureau-330000", bureau.Settlement) == 0


async def test_the_sources_must_know_the_institution_and_the_visit(fed):
    app = fed.app()
    body = await record(fed, app, "s-1", local(fed, institutionCode="H33010600099"))
    assert problem_paths(body) == {("input", "institutionCode")}
    body = await record(fed, app, "s-2", local(fed, visitId=fed.remote_visit))
    assert problem_paths(body) == {("input", "visitId")}
    body = await record(fed, app, "s-3", local(fed, insuredRegion="330102"))
    assert problem_paths(body) == {("input", "insuredRegion")}
    assert await count(fed, "bureau-330000", bureau.Settlement) == 0


async def test_a_visit_is_settled_once(fed):
    app = fed.app()
    assert "errors" not in await record(fed, app, "s-1", local(fed))
    body = await record(fed, app, "s-2", local(fed))
    assert problem_paths(body) == {("input", "visitId")}
    assert await count(fed, "bureau-330000", bureau.Settlement) == 1


async def test_cross_province_needs_a_filing_then_goes_to_the_platform(fed):
    app = fed.app()
    center = fed.token("settlement_center", "100000")
    body = await record(fed, app, "x-1", remote(fed), center)
    assert problem_paths(body) == {("input", "treatmentRegion")}
    assert "filing" in str(body)
    assert await count(fed, "platform", platform.CrossSettlement) == 0

    filing_id = await file_for(fed, app, fed.remote)
    body = await record(fed, app, "x-1", remote(fed), center)
    assert "errors" not in body, body
    s = body["data"]["recordSettlement"]["settlement"]
    assert s["crossProvince"] is True and s["filingId"] == filing_id
    assert s["clearingStatus"] == "PENDING" and s["clearingMonth"] == f"{RECENT:%Y-%m}"
    assert s["integrity"] == "VERIFIED"  # anchored at the platform as cross_settlements
    (row,) = await rows(fed, "platform", platform.CrossSettlement)
    assert row["setl_id"] == s["settlementId"] and row["insuplc_admdvs"] == "220102"
    assert await count(fed, "bureau-330000", bureau.Settlement) == 0


async def test_a_filing_outside_its_validity_does_not_cover(fed):
    app = fed.app()
    await file_for(fed, app, fed.remote)
    late = (RECENT - timedelta(days=30)).isoformat()  # before the filing's first day
    body = await record(
        fed, app, "x-1", remote(fed, settledAt=late), fed.token("settlement_center", "100000")
    )
    assert problem_paths(body) == {("input", "treatmentRegion")}


async def test_same_key_records_once_and_refuses_other_input(fed):
    app = fed.app()
    first = await record(fed, app, "once", local(fed))
    again = await record(fed, app, "once", local(fed, total="320.5"))  # same amount
    assert again["data"]["recordSettlement"]["replayed"] is True
    assert (
        again["data"]["recordSettlement"]["settlement"]
        == first["data"]["recordSettlement"]["settlement"]
    )
    other = await record(fed, app, "once", local(fed, total="330.50"))
    assert code(other) == "IDEMPOTENCY_KEY_REUSED"
    assert await count(fed, "bureau-330000", bureau.Settlement) == 1


async def test_an_agency_settles_only_in_its_own_region(fed):
    app = fed.app()
    body = await record(fed, app, "s-1", local(fed), agency(fed, "370000"))
    assert code(body) == "FORBIDDEN"
    body = await record(fed, app, "s-1", local(fed), agency(fed, "330100"))  # Hangzhou city
    assert "errors" not in body, body


@pytest.mark.parametrize(
    ("role", "org", "purpose"),
    [
        ("clinician", "H33010600001", "TREATMENT"),
        ("patient", "330106", "PATIENT_ACCESS"),
        ("researcher", "330000", "RESEARCH"),
    ],
)
async def test_only_settlement_roles_record(fed, role, org, purpose):
    app = fed.app()
    token = fed.token(role, org, person=fed.local if role == "patient" else None)
    body = await record(fed, app, "s-1", local(fed), token, purpose)
    assert code(body) == "FORBIDDEN"
    assert await count(fed, "bureau-330000", bureau.Settlement) == 0
