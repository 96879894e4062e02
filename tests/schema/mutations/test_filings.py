"""fileForCrossRegionCare (备案) through the HTTP app: who may file for whom, destination and
validity rules, the name carried to the platform under the platform's own key, idempotency."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from connectors.sql.models import platform
from security.idempotency import IdempotencyKeyRow
from tests.support.federation import Federation, make_id_number
from tests.support.mutations import RECENT, code, count, problem_paths, rows, run

FILE = """mutation($key: String!, $input: FileForCrossRegionCareInput!) {
  fileForCrossRegionCare(idempotencyKey: $key, input: $input) {
    replayed
    filing { filingId personId name insuredRegion destination category channel status
      filedAt validFrom validUntil }
  } }"""
TODAY = RECENT.date() + timedelta(days=2)


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    fed.id_number = make_id_number("220102", seq=456)
    fed.ref = await fed.add_person(fed.id_number, "李四", source="bureau-220000", region="220102")
    return fed


def filing(**changes) -> dict:
    data = {
        "insuredRegion": "220102",
        "destination": "330000",
        "category": "TEMPORARY",
        "channel": "MINI_PROGRAM",
        "validFrom": TODAY.isoformat(),
        "validUntil": (TODAY + timedelta(days=90)).isoformat(),
    }
    return {**data, **changes}


def patient(fed) -> str:
    return fed.token("patient", "220102", person=fed.ref)


async def file_(
    fed, app, key: str, data: dict, token: str | None = None, purpose: str = "PATIENT_ACCESS"
) -> dict:
    return await run(fed, app, token or patient(fed), purpose, FILE, {"key": key, "input": data})


async def test_a_patient_files_for_themself_and_the_platform_keeps_the_name(fed):
    app = fed.app()
    body = await file_(fed, app, "f-1", filing())
    assert "errors" not in body, body
    f = body["data"]["fileForCrossRegionCare"]["filing"]
    assert f["personId"] == fed.ref and f["name"] == "李四"
    assert (f["insuredRegion"], f["destination"], f["category"], f["channel"], f["status"]) == (
        "220102",
        "330000",
        "TEMPORARY",
        "MINI_PROGRAM",
        "ACTIVE",
    )
    assert f["validUntil"] == (TODAY + timedelta(days=90)).isoformat()

    (row,) = await rows(fed, "platform", platform.Filing)
    # Sealed under the platform's key for this very row, so it opens only as this filing.
    assert (
        fed.cipher.decrypt(
            row["name_enc"],
            source="platform",
            table="filings",
            column="name_enc",
            row_key=row["filing_id"],
        )
        == "李四"
    )
    assert row["id_number_bidx"] == fed.indexer.id_number(fed.id_number)

    listed = await run(
        fed,
        app,
        patient(fed),
        "PATIENT_ACCESS",
        """query {
        filings { nodes { filingId name } } }""",
        {},
    )
    assert listed["data"]["filings"]["nodes"] == [{"filingId": f["filingId"], "name": "李四"}]


async def test_an_agency_files_for_a_person_insured_in_its_region(fed):
    app = fed.app()
    agency = fed.token("insurance_agency", "220000")
    body = await file_(
        fed,
        app,
        "f-1",
        filing(category="RELOCATED_RETIREE", validUntil=None, channel="COUNTER"),
        agency,
        "SETTLEMENT",
    )
    assert problem_paths(body) == {("input", "personId")}
    body = await file_(
        fed,
        app,
        "f-1",
        filing(category="RELOCATED_RETIREE", validUntil=None, channel="COUNTER", personId=fed.ref),
        agency,
        "SETTLEMENT",
    )
    assert "errors" not in body, body
    assert body["data"]["fileForCrossRegionCare"]["filing"]["validUntil"] is None  # open-ended
    elsewhere = fed.token("insurance_agency", "330000")
    body = await file_(fed, app, "f-2", filing(personId=fed.ref), elsewhere, "SETTLEMENT")
    assert code(body) == "FORBIDDEN"
    assert await count(fed, "platform", platform.Filing) == 1


async def test_every_bad_field_is_listed_in_one_error_and_nothing_is_written(fed):
    app = fed.app()
    body = await file_(
        fed,
        app,
        "f-1",
        filing(
            destination="220100",
            category="REFERRAL",
            validUntil=(TODAY + timedelta(days=400)).isoformat(),
        ),
    )
    assert problem_paths(body) == {("input", "destination"), ("input", "validUntil")}
    body = await file_(
        fed,
        app,
        "f-1",
        filing(insuredRegion="2201", destination="220000", category="EMERGENCY", validUntil=None),
    )
    assert problem_paths(body) == {("input", "insuredRegion"), ("input", "validUntil")}
    body = await file_(
        fed,
        app,
        "-",
        filing(validFrom=date(2020, 1, 10).isoformat(), validUntil=date(2020, 1, 1).isoformat()),
    )
    assert problem_paths(body) == {("input", "validUntil")}
    assert await count(fed, "platform", platform.Filing) == 0
    assert await count(fed, "gateway", IdempotencyKeyRow) == 0


async def test_another_city_of_the_same_province_is_a_destination(fed):
    app = fed.app()
    body = await file_(fed, app, "f-1", filing(destination="220200"))  # Jilin city
    assert "errors" not in body, body


async def test_the_insured_region_must_be_the_persons(fed):
    app = fed.app()
    body = await file_(fed, app, "f-1", filing(insuredRegion="220104"))
    assert problem_paths(body) == {("input", "insuredRegion")}
    body = await file_(fed, app, "f-1", filing(insuredRegion="330106", destination="220000"))
    assert problem_paths(body) == {("input", "insuredRegion")}  # the Zhejiang bureau: unknown


async def test_same_key_files_once_and_refuses_other_input(fed):
    app = fed.app()
    first = await file_(fed, app, "once", filing())
    again = await file_(fed, app, "once", filing())
    assert again["data"]["fileForCrossRegionCare"]["replayed"] is True
    assert (
        again["data"]["fileForCrossRegionCare"]["filing"]
        == first["data"]["fileForCrossRegionCare"]["filing"]
    )
    other = await file_(fed, app, "once", filing(channel="APP"))
    assert code(other) == "IDEMPOTENCY_KEY_REUSED"
    assert await count(fed, "platform", platform.Filing) == 1


async def test_a_patient_files_only_for_themself_and_clinicians_not_at_all(fed):
    app = fed.app()
    other = await fed.add_person(
        make_id_number("220102", seq=458), "赵六", source="bureau-220000", region="220102"
    )
    body = await file_(fed, app, "f-1", filing(personId=other))
    assert code(body) == "FORBIDDEN"
    body = await file_(
        fed,
        app,
        "f-1",
        filing(personId=fed.ref),
        fed.token("clinician", "H33010600001"),
        "TREATMENT",
    )
    assert code(body) == "FORBIDDEN"
    assert await count(fed, "platform", platform.Filing) == 0


async def test_only_emergency_care_is_filed_afterwards(fed):
    app = fed.app()
    past = {"validFrom": "2020-03-30", "validUntil": "2020-04-29"}
    body = await file_(fed, app, "f-1", filing(category="TEMPORARY", **past))
    assert problem_paths(body) == {("input", "validUntil")}
    body = await file_(fed, app, "f-2", filing(category="EMERGENCY", **past))
    assert "errors" not in body, body
    assert body["data"]["fileForCrossRegionCare"]["filing"]["validUntil"] == "2020-04-29"
