"""Every value a client can send out of range is BAD_USER_INPUT naming its path: dates and
times at the calendar's edges (year 1 and 9999, with offsets that leave the calendar in UTC),
decimals beyond any arithmetic context, integers beyond 32 bits; as variables and as
literals. The boundaries are pinned on the scalars themselves."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from schema.scalars import SCALAR_OVERRIDES, OutOfRange
from tests.support.federation import Federation

PUBLISH = """mutation($key: String!, $input: PublishTestResultInput!) {
  publishTestResult(idempotencyKey: $key, input: $input) { replayed } }"""
FILE = """mutation($key: String!, $input: FileForCrossRegionCareInput!) {
  fileForCrossRegionCare(idempotencyKey: $key, input: $input) { replayed } }"""
RECORD = """mutation($key: String!, $input: RecordSettlementInput!) {
  recordSettlement(idempotencyKey: $key, input: $input) { replayed } }"""
EVENTS = """query($from: DateTime) { auditEvents(filter: {from: $from}, first: 1) {
  nodes { index } } }"""


def lab(**changes) -> dict:
    return {
        "category": "LAB",
        "itemName": "葡萄糖",
        "loincCode": "2345-7",
        "value": 7.2,
        "unit": "mmol/L",
        "collectedAt": "2026-01-01T08:00:00",
        "reportedAt": "2026-01-01T09:00:00",
        "orderingDoctor": "D330106000123",
        "personId": "p",
        **changes,
    }


def filing(**changes) -> dict:
    return {
        "personId": "p",
        "insuredRegion": "220102",
        "destination": "330000",
        "category": "TEMPORARY",
        "channel": "MINI_PROGRAM",
        "validFrom": "2026-01-01",
        "validUntil": "2026-03-01",
        **changes,
    }


def settlement(**changes) -> dict:
    return {
        "personId": "p",
        "visitId": "MD1",
        "institutionCode": "H33010600001",
        "medicalType": "OUTPATIENT",
        "settledAt": "2026-01-01T08:00:00",
        "insuredRegion": "330106",
        "treatmentRegion": "330106",
        "total": "10.00",
        "inPolicy": "10.00",
        "fundPay": "5.00",
        "accountPay": "0",
        "cashPay": "5.00",
        **changes,
    }


CASES = [
    (PUBLISH, lab(collectedAt="0001-01-01T00:00:00+08:00"), ["input", "collectedAt"]),
    (PUBLISH, lab(reportedAt="9999-12-31T23:59:59-08:00"), ["input", "reportedAt"]),
    (PUBLISH, lab(collectedAt="0001-01-01T00:00:00"), ["input", "collectedAt"]),
    (FILE, filing(validFrom="0001-01-01"), ["input", "validFrom"]),
    (FILE, filing(validUntil="9999-12-31"), ["input", "validUntil"]),
    (RECORD, settlement(total="1e999999"), ["input", "total"]),
    (RECORD, settlement(fundPay="1e-999999"), ["input", "fundPay"]),
    (RECORD, settlement(settledAt="9999-12-31T23:59:59.999999-12:00"), ["input", "settledAt"]),
]


@pytest.fixture
async def fed(data_dir):
    return await Federation(data_dir).setup(institutions=False)


async def answer(fed, role: str, org: str, purpose: str, query: str, variables: dict) -> dict:
    async with fed.client(fed.app(), fed.token(role, org), purpose) as client:
        response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


def the_problem(body: dict) -> dict:
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    (problem,) = error["extensions"]["problems"]
    return problem


@pytest.mark.parametrize(("query", "value", "path"), CASES)
async def test_out_of_range_variables_are_bad_user_input_at_their_path(fed, query, value, path):
    body = await answer(
        fed, "settlement_center", "330000", "SETTLEMENT", query, {"key": "k1", "input": value}
    )
    assert body["data"] is None
    problem = the_problem(body)
    assert problem["path"] == path
    assert "Traceback" not in problem["reason"] and "Overflow" not in problem["reason"]


async def test_an_out_of_range_literal_names_its_argument_path(fed):
    query = (
        'mutation { fileForCrossRegionCare(idempotencyKey: "k", input: {personId: "p", '
        'insuredRegion: "220102", destination: "330000", category: TEMPORARY, '
        'channel: MINI_PROGRAM, validFrom: "2026-01-01", validUntil: "9999-12-31"}) '
        "{ replayed } }"
    )
    body = await answer(fed, "insurance_agency", "220102", "SETTLEMENT", query, {})
    assert the_problem(body)["path"] == ["input", "validUntil"]


async def test_an_int_beyond_32_bits_is_bad_user_input(fed):
    query = "query($n: Int) { institutions(first: $n) { nodes { code } } }"
    body = await answer(fed, "settlement_center", "330000", "SETTLEMENT", query, {"n": 2**40})
    assert the_problem(body)["path"] == ["n"]


async def test_an_in_range_time_passes_the_same_field(fed):
    # Positive control: the same query with a time inside the range is answered.
    body = await answer(fed, "auditor", "330000", "AUDIT", EVENTS, {"from": "1900-01-02T00:00:00Z"})
    assert "errors" not in body, body
    refused = await answer(
        fed, "auditor", "330000", "AUDIT", EVENTS, {"from": "0001-01-01T00:00:00+14:00"}
    )
    assert the_problem(refused)["path"] == ["from"]


DATETIME = SCALAR_OVERRIDES[datetime].parse_value
DATE = SCALAR_OVERRIDES[date].parse_value
DECIMAL = SCALAR_OVERRIDES[Decimal].parse_value


@pytest.mark.parametrize(
    ("parse", "accepted", "refused"),
    [
        (DATETIME, "1900-01-01T00:00:00", "1899-12-31T23:59:59"),
        (DATETIME, "2199-12-31T23:59:59", "2200-01-01T00:00:00"),
        (DATETIME, "1900-01-01T08:00:00+08:00", "1900-01-01T07:59:59+08:00"),  # 1899 in UTC
        (DATETIME, "2199-12-31T15:59:59-08:00", "2199-12-31T16:00:00-08:00"),  # 2200 in UTC
        (DATE, "1900-01-01", "1899-12-31"),
        (DATE, "2199-12-31", "2200-01-01"),
        (DECIMAL, "1e30", "1e31"),
        (DECIMAL, "1e-30", "1e-31"),
        (DECIMAL, "999999999999999999999999999999.99", "12345678901234567890123456789012.5"),
    ],
)
def test_the_range_boundaries(parse, accepted, refused):
    assert parse(accepted) is not None
    with pytest.raises(OutOfRange):
        parse(refused)


def test_nan_and_zero_are_left_to_the_mutations_own_checks():
    assert DECIMAL("0") == 0
    assert DECIMAL("NaN").is_nan()
