"""Visit.settlement and Prescription.purchases: links a page follows instead of matching ids
itself. A link is no side door: what it leads to is judged row by row by the enforcement
point, so for every caller it shows exactly what the caller's own lists show."""

from __future__ import annotations

from datetime import datetime

import pytest

from connectors.sql.models import bureau, pharmacy
from tests.support.federation import RECENT_VISIT, Federation, gql, make_id_number

QUERY = """query($p: ID!) { person(personId: $p) { cloudRecord {
  visits { nodes { visitId settlement { settlementId visitId total }
    prescriptions { prescriptionId purchases { purchaseId total } } } }
  settlements { nodes { settlementId visitId total } }
  drugPurchases { nodes { purchaseId total } } } } }"""
MINE = QUERY.replace("query($p: ID!) { person(personId: $p)", "{ me")


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(), "张三")
    settled, unsettled = await fed.add_visits(ref, 2, begin=RECENT_VISIT)  # treating window
    await fed.insert(
        "bureau-330000",
        bureau.Settlement,
        [
            dict(
                setl_id="S330000000001",
                mdtrt_id=settled,
                person_ref=ref,
                institution_code="H33010600001",
                med_type="OUTPATIENT",
                setl_time=datetime.combine(RECENT_VISIT, datetime.min.time()).replace(hour=11),
                insuplc_admdvs="330106",
                mdtrtarea_admvs="330106",
                total_fen=25000,
                in_policy_fen=25000,
                fund_pay_fen=15000,
                acct_pay_fen=5000,
                cash_pay_fen=5000,
                cross_province=False,
                clearing_status="CLEARED",
            )
        ],
    )
    async with fed.client(fed.app(), fed.token("patient", "330106", person=ref)) as c:
        me = (
            await gql(
                c,
                "{ me { cloudRecord { visits { nodes { visitId prescriptions "
                "{ prescriptionId } } } } } }",
            )
        )["data"]["me"]["cloudRecord"]
    rx = {v["visitId"]: v["prescriptions"][0]["prescriptionId"] for v in me["visits"]["nodes"]}
    dispensings = [("D330000000001", rx[settled], 3000), ("D330000000002", None, 1200)]
    await fed.insert(
        "pharmacy-p33010600101",
        pharmacy.Dispensing,
        [
            dict(
                dispensing_id=did,
                rx_id=rx_id,
                person_ref=ref,
                pharmacy_code="P33010600101",
                pharmacist_code="Y330106000001",
                dispensed_at=datetime(2026, 11, 1, 15),
                total_fen=total,
                fund_pay_fen=0,
                acct_pay_fen=total,
                cash_pay_fen=0,
                delivered=False,
                delivery_fee_fen=0,
            )
            for did, rx_id, total in dispensings
        ],
    )
    return fed, ref, settled, unsettled, rx


async def test_a_patient_follows_a_visit_to_its_settlement_and_a_prescription_to_its_purchase(
    world,
):
    fed, ref, settled, unsettled, _ = world
    async with fed.client(fed.app(), fed.token("patient", "330106", person=ref)) as c:
        body = await gql(c, MINE)
    assert "errors" not in body, body.get("errors")
    visits = {v["visitId"]: v for v in body["data"]["me"]["cloudRecord"]["visits"]["nodes"]}
    assert visits[settled]["settlement"] == {
        "settlementId": "S330000000001",
        "visitId": settled,
        "total": "250.00",
    }
    assert visits[unsettled]["settlement"] is None  # not settled yet
    assert visits[settled]["prescriptions"][0]["purchases"] == [
        {"purchaseId": "D330000000001", "total": "30.00"}
    ]
    assert visits[unsettled]["prescriptions"][0]["purchases"] == []  # not dispensed


@pytest.mark.parametrize(
    ("role", "org", "purpose"),
    [
        ("clinician", "H33010600001", "TREATMENT"),  # treating: visits, not settlements
        ("insurance_agency", "330100", "FUND_SUPERVISION"),  # the region's agency
        ("pharmacist", "P33010600101", "TREATMENT"),  # the pharmacy that dispensed
        ("clinician", "H22010200005", "TREATMENT"),  # a stranger: nothing
        ("researcher", "R11010800001", "RESEARCH"),
    ],
)
async def test_a_link_shows_what_the_callers_own_lists_show(world, role, org, purpose):
    fed, ref, settled, _, _ = world
    async with fed.client(fed.app(), fed.token(role, org), purpose) as c:
        body = await gql(c, QUERY, {"p": ref})
    record = (body["data"]["person"] or {}).get("cloudRecord") or {}
    listed = {s["settlementId"]: s for s in _nodes(record.get("settlements"))}
    bought = {p["purchaseId"]: p for p in _nodes(record.get("drugPurchases"))}
    for visit in _nodes(record.get("visits")):
        linked = visit["settlement"]
        mine = [s for s in listed.values() if s["visitId"] == visit["visitId"]]
        if linked is None:
            # null here must mean the caller's list has no settlement of this visit either
            assert not mine or mine[0]["visitId"] is None, (role, visit["visitId"])
        else:
            assert linked == listed[linked["settlementId"]]
        for prescription in visit["prescriptions"] or []:
            for purchase in prescription["purchases"]:
                assert purchase == bought[purchase["purchaseId"]], role
    if role == "clinician" and org == "H33010600001":
        # The positive and negative controls of the side door: the treating clinician sees the
        # visit but no settlement, in the list or through the link.
        visits = _nodes(record.get("visits"))
        assert {v["visitId"] for v in visits} >= {settled}
        assert not listed and all(v["settlement"] is None for v in visits)
    if role == "insurance_agency":  # the region's agency sees the settlement, both ways
        linked = [v["settlement"] for v in _nodes(record.get("visits")) if v["settlement"]]
        assert [s["settlementId"] for s in linked] == list(listed) == ["S330000000001"]


def _nodes(connection):
    return (connection or {}).get("nodes") or []
