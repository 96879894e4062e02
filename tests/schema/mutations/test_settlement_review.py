"""The claims review before settlement (a blocking rule refuses, a lower one warns in the
answer, both are stored as warnings) and after it (the scan finds the same hits on stored
settlements, and stores each once)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from connectors.sql.models import bureau
from gateway.app import build_services
from gateway.supervision import run_scan
from security import warnings as store
from tests.support.audit import verify
from tests.support.federation import Federation, make_id_number
from tests.support.mutations import RECENT, count, only_error, rows, run

RECORD = """mutation($key: String!, $input: RecordSettlementInput!) {
  recordSettlement(idempotencyKey: $key, input: $input) {
    settlement { settlementId fundPay }
    warnings { rule grade title detail }
  } }"""


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    fed.ref = await fed.add_person(make_id_number(), "张三")
    return fed


def settle(fed, visit: str, medical_type="OUTPATIENT", total="120.00", hours=3) -> dict:
    return {
        "personId": fed.ref,
        "visitId": visit,
        "institutionCode": "H33010600001",
        "medicalType": medical_type,
        "settledAt": (RECENT - timedelta(hours=hours)).isoformat(),
        "insuredRegion": "330106",
        "treatmentRegion": "330106",
        "total": total,
        "inPolicy": total,
    }


async def record(fed, app, key, data) -> dict:
    token = fed.token("insurance_agency", "330000")
    return await run(fed, app, token, "SETTLEMENT", RECORD, {"key": key, "input": data})


async def test_a_blocking_rule_refuses_the_settlement_and_is_kept_as_a_warning(fed):
    app = fed.app()
    day = RECENT.date() - timedelta(days=1)
    (online,) = await fed.add_visits(
        fed.ref,
        1,
        visit_type="INTERNET_REVISIT",
        diagnosis="E11.9",
        begin=day,
        with_prescriptions=False,
    )
    body = await record(fed, app, "r-1", settle(fed, online, "INTERNET_REVISIT"))
    error = only_error(body)
    assert error["extensions"]["code"] == "CLAIM_REFUSED"
    assert [r["rule"] for r in error["extensions"]["rules"]] == [
        "REVISIT_WITHOUT_OFFLINE_DIAGNOSIS"
    ]
    assert "E11" in error["message"]
    assert await count(fed, "bureau-330000", bureau.Settlement) == 0
    (kept,) = await rows(fed, "gateway", store.SupervisionWarning)
    assert (kept["rule"], kept["phase"], kept["setl_id"], kept["mdtrt_id"]) == (
        "REVISIT_WITHOUT_OFFLINE_DIAGNOSIS",
        "PRE",
        None,
        online,
    )
    assert kept["state"] == "OPEN" and kept["grade"] == 4
    # Positive control: with an offline diagnosis of the disease before it, it is settled.
    await fed.add_visits(
        fed.ref,
        1,
        visit_type="CHRONIC_OUTPATIENT",
        diagnosis="E11.9",
        begin=day - timedelta(days=60),
        with_prescriptions=False,
    )
    body = await record(fed, app, "r-1", settle(fed, online, "INTERNET_REVISIT"))
    assert "errors" not in body, body
    assert body["data"]["recordSettlement"]["warnings"] == []


async def test_a_lower_grade_hit_is_a_warning_in_the_answer(fed):
    app = fed.app()
    first, second, third = await fed.add_visits(fed.ref, 3, with_prescriptions=False)
    assert "errors" not in await record(fed, app, "a", settle(fed, first, hours=5))
    body = await record(fed, app, "b", settle(fed, second, hours=4))
    answer = body["data"]["recordSettlement"]
    assert answer["settlement"]["settlementId"]
    (warning,) = answer["warnings"]
    assert warning["rule"] == "DUPLICATE_BILLING" and warning["grade"] == 3
    assert warning["title"].startswith("重复收费")
    (kept,) = await rows(fed, "gateway", store.SupervisionWarning)
    assert kept["setl_id"] == answer["settlement"]["settlementId"] and kept["phase"] == "PRE"
    # Non-hit: another total.
    body = await record(fed, app, "c", settle(fed, third, total="99.00", hours=3))
    assert body["data"]["recordSettlement"]["warnings"] == []


async def test_the_scan_finds_stored_hits_and_stores_each_once(fed):
    app = fed.app()
    first, second, third = await fed.add_visits(fed.ref, 3, with_prescriptions=False)
    for key, visit, total, hours in (("a", first, "120.00", 5), ("b", second, "120.00", 4)):
        assert "errors" not in await record(
            fed, app, key, settle(fed, visit, total=total, hours=hours)
        )
    assert "errors" not in await record(fed, app, "c", settle(fed, third, total="99.00", hours=3))
    # A cross-province settlement at the platform of a visit no bureau knows.
    ghost = await fed.add_cross_settlement(fed.ref, when=RECENT - timedelta(hours=2))
    services = build_services(fed.settings)
    try:
        start = datetime.combine(RECENT.date() - timedelta(days=2), datetime.min.time())
        # No log, no warning: a hit nobody could prove is not stored.
        _, unlogged = await run_scan(services, None, start, RECENT + timedelta(days=1))
        assert unlogged == [] and len(await rows(fed, "gateway", store.SupervisionWarning)) == 1
        recorder = services.extras["audit"]
        result, stored = await run_scan(services, recorder, start, RECENT + timedelta(days=1))
        assert result.settlements == 4
        found = sorted((f.rule, f.setl_id) for f in result.findings)
        duplicates = [s for rule, s in found if rule == "DUPLICATE_BILLING"]
        assert len(duplicates) == 2  # each of the pair is the other's duplicate
        assert ("SETTLEMENT_WITHOUT_VISIT", ghost) in found
        assert len(found) == 3
        # the second of the pair was kept before settlement already: one new row for it
        assert len(stored) == 2
        again, stored_again = await run_scan(services, recorder, start, RECENT + timedelta(days=1))
        assert len(again.findings) == 3 and stored_again == []
        # outside the period: nothing
        empty, _ = await run_scan(services, recorder, datetime(2001, 1, 1), datetime(2001, 2, 1))
        assert empty.settlements == 0 and empty.findings == []
        await recorder.close()
        report = await verify(fed, None)
        assert report.ok, str(report)  # every stored hit is one the log opened
    finally:
        await services.registry.dispose()
        await services.gateway_engine.dispose()
