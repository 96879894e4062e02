"""recordSettlement computes the split from the benefits file, or checks a submitted one and
names each difference; cross-province care is priced by the treatment place's catalogue and
paid by the insured place's benefits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.sql.models import bureau, platform
from tests.support.federation import Federation, make_id_number
from tests.support.mutations import RECENT, count, file_for_care, problem_paths, rows, run

RECORD = """mutation($key: String!, $input: RecordSettlementInput!) {
  recordSettlement(idempotencyKey: $key, input: $input) {
    settlement { total inPolicy fundPay accountPay cashPay crossProvince }
    benefits { region scheme deductible ratio capped notes }
  } }"""
# Priced by Zhejiang's catalogue: bed 甲, surgery 乙 (10 % self-paid first), a 丙 drug, delivery.
ITEMS = [
    {"code": "120100001", "kind": "SERVICE", "amount": "2000.00"},
    {"code": "330100001", "kind": "SERVICE", "amount": "5000.00"},
    {"code": "XR05DAF051A001010100613", "kind": "DRUG", "amount": "40.00"},
    {"code": "XR05DAF051A001010100613", "kind": "DELIVERY", "amount": "10.00"},
]


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    fed.local = await fed.add_person(make_id_number(), "张三")
    fed.local_visits = await fed.add_visits(fed.local, 3, with_prescriptions=False)
    fed.remote = await fed.add_person(
        make_id_number("220102", seq=456), "李四", source="bureau-220000", region="220102"
    )
    (fed.remote_visit,) = await fed.add_visits(
        fed.remote, 1, insured="220102", with_prescriptions=False, visit_type="INPATIENT"
    )
    return fed


def local(fed, n: int = 0, **changes) -> dict:
    return {
        "personId": fed.local,
        "visitId": fed.local_visits[n],
        "institutionCode": "H33010600001",
        "medicalType": "OUTPATIENT",
        "settledAt": (RECENT - timedelta(hours=3 - n)).isoformat(),
        "insuredRegion": "330106",
        "treatmentRegion": "330106",
        "total": "320.50",
        "inPolicy": "300.00",
    } | changes


async def record(fed, app, key, data, token=None) -> dict:
    token = token or fed.token("insurance_agency", "330000")
    return await run(fed, app, token, "SETTLEMENT", RECORD, {"key": key, "input": data})


async def test_the_years_deductible_runs_across_settlements(fed):
    app = fed.app()
    first = await record(fed, app, "a", local(fed, 0, total="150.00", inPolicy="150.00"))
    answer = first["data"]["recordSettlement"]
    assert answer["benefits"] == {
        "region": "330100",
        "scheme": "outpatient",
        "deductible": "150.00",
        "ratio": "0.6",
        "capped": False,
        "notes": [],
    }
    assert answer["settlement"]["fundPay"] == "0.00"
    second = await record(fed, app, "b", local(fed, 1))
    answer = second["data"]["recordSettlement"]
    # 50 yuan of the 200 yuan deductible left: (300 - 50) * 0.60 = 150
    assert answer["benefits"]["deductible"] == "50.00"
    assert answer["settlement"]["fundPay"] == "150.00"
    assert answer["settlement"]["accountPay"] == "150.00"
    assert answer["settlement"]["cashPay"] == "20.50"


async def test_a_submitted_split_is_checked_and_each_difference_named(fed):
    app = fed.app()
    wrong = {"fundPay": "200.00", "accountPay": "100.00", "cashPay": "20.50"}
    body = await record(fed, app, "a", local(fed, **wrong))
    assert problem_paths(body) == {("input", "fundPay"), ("input", "accountPay")}
    reasons = {p["reason"] for p in body["errors"][0]["extensions"]["problems"]}
    assert "differs from the benefits of 330100 (60.00 by rule)" in reasons
    assert await count(fed, "bureau-330000", bureau.Settlement) == 0
    right = {"fundPay": "60.00", "accountPay": "240.00", "cashPay": "20.50"}
    body = await record(fed, app, "a", local(fed, **right))
    assert "errors" not in body, body
    body = await record(fed, app, "c", local(fed, 1, fundPay="60.00"))
    assert problem_paths(body) == {("input", "accountPay"), ("input", "cashPay")}


async def test_items_are_priced_and_a_submitted_total_checked(fed):
    app = fed.app()
    body = await record(fed, app, "a", local(fed, total="7040.00", inPolicy=None, items=ITEMS))
    assert problem_paths(body) == {("input", "total")}  # the items come to 7050.00
    body = await record(fed, app, "a", local(fed, total=None, inPolicy=None))
    assert problem_paths(body) == {("input", "total"), ("input", "inPolicy")}
    body = await record(fed, app, "a", local(fed, total=None, inPolicy=None, items=ITEMS))
    assert "errors" not in body, body
    s = body["data"]["recordSettlement"]["settlement"]
    assert (s["total"], s["inPolicy"]) == ("7050.00", "6500.00")


async def test_cross_province_care_treatment_catalogue_insured_benefits(fed):
    app = fed.app()
    await file_for_care(fed, app, fed.remote)
    data = local(
        fed,
        personId=fed.remote,
        visitId=fed.remote_visit,
        medicalType="INPATIENT",
        insuredRegion="220102",
        total=None,
        inPolicy=None,
        items=ITEMS,
    )
    body = await record(fed, app, "x", data, fed.token("settlement_center", "100000"))
    assert "errors" not in body, body
    answer = body["data"]["recordSettlement"]
    # Zhejiang's catalogue: 2000 + 5000 * 0.9 in policy. Jilin's employee inpatient benefits:
    # 900 yuan deductible, 82 % at a tertiary hospital less 12 points for care elsewhere.
    assert answer["benefits"]["region"] == "220000" and answer["benefits"]["ratio"] == "0.70"
    assert answer["settlement"] == {
        "total": "7050.00",
        "inPolicy": "6500.00",
        "fundPay": "3920.00",  # (6500 - 900) * 0.70
        "accountPay": "1234.56",  # the whole balance
        "cashPay": "1895.44",
        "crossProvince": True,
    }
    (row,) = await rows(fed, "platform", platform.CrossSettlement)
    assert row["fund_pay_fen"] == 392000


async def test_no_enrolment_when_the_visit_began_is_refused(fed):
    late = await fed.add_person(
        make_id_number(seq=789), "王五", begin=RECENT.date() + timedelta(days=1)
    )
    (visit,) = await fed.add_visits(late, 1, with_prescriptions=False)
    body = await record(fed, fed.app(), "a", local(fed, personId=late, visitId=visit))
    assert problem_paths(body) == {("input", "insuredRegion")}
