"""Fund monitoring for supervisors: spending against budget per region and month, the rules
hit, institutions by warning rate, and clearings reconciled against their settlements; each
open only as the policy's [[supervision]] says, and audited."""

from __future__ import annotations

from datetime import datetime

import pytest

from connectors.sql.models import bureau, platform
from security import warnings as store
from tests.support.audit import logged, open_warnings
from tests.support.federation import Federation, make_id_number
from tests.support.mutations import code, rows, run

SPENDING = """query($region: String) { fundSpending(fromMonth: "2020-05", toMonth: "2020-06",
  region: $region) { region month settlements fundPay enrolled budget share overBudget } }"""
CLEARINGS = """query($p: String) { clearings(fromMonth: "2020-05", toMonth: "2020-06",
  province: $p) { clearingId month payerProvince payeeProvince settlementCount total fundPay
  reconciliation { settlements total fundPay matches differences } } }"""
RATES = """{ institutionWarningRates(fromMonth: "2020-05", toMonth: "2020-06") {
  institutionCode settlements warnings rate }
  rulesHit(fromMonth: "2020-05", toMonth: "2020-06") { rule title grade warnings open } }"""


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    fed.refs = [
        await fed.add_person(make_id_number(seq=100 + i), f"甲{i}") for i in range(3)
    ]  # enrolled in 330106 since 2015
    visits = await fed.add_visits(fed.refs[0], 2, with_prescriptions=False)
    await fed.insert(
        "bureau-330000",
        bureau.Settlement,
        [
            {
                "setl_id": f"S{n}",
                "mdtrt_id": visit,
                "person_ref": fed.refs[0],
                "institution_code": "H33010600001",
                "med_type": "INPATIENT",
                "setl_time": datetime(2020, 5, 10 + n),
                "insuplc_admdvs": "330106",
                "mdtrtarea_admvs": "330106",
                "total_fen": 50_000,
                "in_policy_fen": 40_000,
                "fund_pay_fen": fund,
                "acct_pay_fen": 0,
                "cash_pay_fen": 50_000 - fund,
                "cross_province": False,
                "clearing_status": "CLEARED",
            }
            for n, (visit, fund) in enumerate(zip(visits, (20_000, 30_000), strict=True))
        ],
    )
    return fed


async def ask(
    fed, query, variables=None, role="insurance_agency", org="330000", purpose="FUND_SUPERVISION"
):
    return await run(fed, fed.app(), fed.token(role, org), purpose, query, variables or {})


async def test_spending_against_budget_per_region_and_month(fed):
    body = await ask(fed, SPENDING)
    assert "errors" not in body, body
    may, june = body["data"]["fundSpending"]
    # Hangzhou's budget: 1400 yuan a person-year, 3 persons enrolled: 350 yuan a month.
    assert may == {
        "region": "330106",
        "month": "2020-05",
        "settlements": 2,
        "fundPay": "500.00",
        "enrolled": 3,
        "budget": "350.00",
        "share": pytest.approx(500 / 350),
        "overBudget": True,
    }
    assert june["month"] == "2020-06" and june["settlements"] == 0 and not june["overBudget"]
    events = [e for e in await logged(fed) if "supervision" in e]
    assert events and events[-1]["supervision"]["read"] == ["Query.fundSpending"]


async def test_spending_is_scoped_to_the_callers_region(fed):
    other = await ask(fed, SPENDING, org="370000")
    assert other["data"]["fundSpending"] == []  # Shandong's agency sees none of Hangzhou's
    assert code(await ask(fed, SPENDING, {"region": "330106"}, org="370000")) == "FORBIDDEN"
    city = await ask(fed, SPENDING, {"region": "330106"}, org="330100")
    assert len(city["data"]["fundSpending"]) == 2
    refused = await ask(fed, SPENDING, role="clinician", org="H33010600001", purpose="TREATMENT")
    assert code(refused) == "FORBIDDEN"
    refused = await ask(fed, SPENDING, purpose="SETTLEMENT")
    assert code(refused) == "FORBIDDEN"
    denied = [e for e in await logged(fed) if "supervision" in e and "FORBIDDEN" in e["errors"]]
    assert len(denied) == 3  # refused reads are audited too


async def test_rules_hit_and_institutions_by_warning_rate(fed):
    await open_warnings(
        fed,
        [
            store.NewWarning(
                rule="DUPLICATE_BILLING",
                grade=3,
                phase="POST",
                setl_id="S1",
                mdtrt_id=None,
                source="bureau-330000",
                person_ref=fed.refs[0],
                institution_code="H33010600001",
                doctor_code="D1",
                insured_region="330106",
                treatment_region="330106",
                settled_at=datetime(2020, 5, 11),
                detail="same total as S0",
            )
        ],
    )
    body = await ask(fed, RATES)
    assert "errors" not in body, body
    assert body["data"]["institutionWarningRates"] == [
        {"institutionCode": "H33010600001", "settlements": 2, "warnings": 1, "rate": 0.5}
    ]
    (hit,) = body["data"]["rulesHit"]
    assert (hit["rule"], hit["grade"], hit["warnings"], hit["open"]) == (
        "DUPLICATE_BILLING",
        3,
        1,
        1,
    )
    assert (await ask(fed, RATES, org="370000"))["data"]["rulesHit"] == []


async def test_clearings_are_reconciled_and_a_difference_is_a_warning(fed):
    jilin = await fed.add_person(
        make_id_number("220102", seq=456), "李四", source="bureau-220000", region="220102"
    )
    for day in (3, 4):
        await fed.add_cross_settlement(jilin, when=datetime(2020, 5, day, 10), total_fen=100_000)
    await fed.insert(
        "platform",
        platform.Clearing,
        [
            {
                "clearing_id": "C2020052233",
                "month": "2020-05",
                "payer_province": "220000",
                "payee_province": "330000",
                "settlement_count": 2,
                "total_fen": 200_000,
                "fund_pay_fen": 118_000,
                "status": "CLEARED",
            },
            {
                "clearing_id": "C2020062233",
                "month": "2020-06",
                "payer_province": "220000",
                "payee_province": "330000",
                "settlement_count": 1,
                "total_fen": 100_000,
                "fund_pay_fen": 59_000,
                "status": "OPEN",
            },
        ],
    )
    body = await ask(fed, CLEARINGS, role="settlement_center", org="100000", purpose="SETTLEMENT")
    assert "errors" not in body, body
    good, bad = body["data"]["clearings"]
    assert good["reconciliation"] == {
        "settlements": 2,
        "total": "2000.00",
        "fundPay": "1180.00",
        "matches": True,
        "differences": [],
    }
    assert bad["reconciliation"]["matches"] is False
    assert len(bad["reconciliation"]["differences"]) == 3  # no settlement of June behind it
    (kept,) = await rows(fed, "gateway", store.SupervisionWarning)
    assert (kept["rule"], kept["clearing_id"], kept["person_ref"]) == (
        "CLEARING_MISMATCH",
        "C2020062233",
        None,
    )
    again = await ask(fed, CLEARINGS, role="settlement_center", org="100000", purpose="SETTLEMENT")
    assert again["data"]["clearings"] == body["data"]["clearings"]
    assert len(await rows(fed, "gateway", store.SupervisionWarning)) == 1  # kept once
    # A provincial bureau sees the clearings its province pays or is paid; others none.
    zhejiang = await ask(fed, CLEARINGS, org="330000", purpose="SETTLEMENT")
    assert len(zhejiang["data"]["clearings"]) == 2
    shandong = await ask(
        fed, CLEARINGS, role="settlement_center", org="370000", purpose="SETTLEMENT"
    )
    assert shandong["data"]["clearings"] == []
    assert (
        code(await ask(fed, CLEARINGS, role="researcher", org="330000", purpose="RESEARCH"))
        == "FORBIDDEN"
    )


CLEARINGS_STATUS = """{ clearings(fromMonth: "2020-05", toMonth: "2020-06") {
  clearingId month payerProvince payeeProvince status settlementCount
  reconciliation { settlements total matches } } }"""


async def test_a_month_with_no_clearing_is_reported_and_kept_as_a_warning(fed):
    jilin = await fed.add_person(
        make_id_number("220102", seq=457), "王五", source="bureau-220000", region="220102"
    )
    await fed.add_cross_settlement(jilin, when=datetime(2020, 6, 3, 10), total_fen=100_000)
    center = {"role": "settlement_center", "org": "100000", "purpose": "SETTLEMENT"}
    body = await ask(fed, CLEARINGS_STATUS, **center)
    assert "errors" not in body, body
    assert body["data"]["clearings"] == [
        {
            "clearingId": "none:2020-06:2233",
            "month": "2020-06",
            "payerProvince": "220000",
            "payeeProvince": "330000",
            "status": "MISSING",
            "settlementCount": 0,
            "reconciliation": {"settlements": 1, "total": "1000.00", "matches": False},
        }
    ]
    (kept,) = await rows(fed, "gateway", store.SupervisionWarning)
    assert (kept["rule"], kept["insured_region"], kept["treatment_region"]) == (
        "CLEARING_MISSING",
        "220000",
        "330000",
    )
    assert "no clearing of 2020-06" in kept["detail"]
    # outside the caller's provinces it is not theirs to see
    shandong = await ask(
        fed, CLEARINGS_STATUS, role="settlement_center", org="370000", purpose="SETTLEMENT"
    )
    assert shandong["data"]["clearings"] == []
    # positive control: once the platform holds the clearing, nothing is missing
    await fed.insert(
        "platform",
        platform.Clearing,
        [
            {
                "clearing_id": "C2020062233",
                "month": "2020-06",
                "payer_province": "220000",
                "payee_province": "330000",
                "settlement_count": 1,
                "total_fen": 100_000,
                "fund_pay_fen": 59_000,
                "status": "CLEARED",
            }
        ],
    )
    body = await ask(fed, CLEARINGS_STATUS, **center)
    [clearing] = body["data"]["clearings"]
    assert (clearing["status"], clearing["reconciliation"]["matches"]) == ("CLEARED", True)


def test_the_month_under_way_is_not_missing_yet():
    from connectors.supervision.monitoring import Actual
    from schema.supervision.monitoring import missing_clearings

    actual = {
        ("2020-05", "220000", "330000"): Actual(1, 100, 59),
        ("2020-06", "220000", "330000"): Actual(1, 100, 59),
    }
    found = missing_clearings([], actual, "", datetime(2020, 6, 30, 23))
    assert [r["month"] for r in found] == ["2020-05"]
    assert missing_clearings([], actual, "", datetime(2020, 7, 1)) != found  # June is over
    assert missing_clearings([], actual, "37", datetime(2020, 7, 1)) == []
    assert len(missing_clearings([], actual, "22", datetime(2020, 7, 1))) == 2
