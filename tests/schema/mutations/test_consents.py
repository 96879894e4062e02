"""grantConsent, revokeConsent and myConsents through the HTTP app, and the consent store the
field policy reads (security.consent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.sql.engine import create_source_engine
from security.consent import ConsentStatus, ConsentStore, DataClass
from security.consent.models import ConsentRow
from security.identity.roles import Purpose
from tests.support.federation import Federation, make_id_number
from tests.support.mutations import code, count, problem_paths, run

GRANT = """mutation($key: String!, $input: GrantConsentInput!) {
  grantConsent(idempotencyKey: $key, input: $input) {
    replayed
    consent { consentId grantee granteeInstitution { name } dataClasses purpose validFrom
      validUntil grantedAt revokedAt status }
  } }"""
REVOKE = """mutation($key: String!, $id: ID!) {
  revokeConsent(idempotencyKey: $key, consentId: $id) {
    replayed consent { consentId status revokedAt } } }"""
MINE = """query($first: Int, $after: String) { myConsents(first: $first, after: $after) {
  nodes { consentId grantee status dataClasses purpose }
  pageInfo { hasNextPage endCursor } } }"""
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    fed.ref = await fed.add_person(make_id_number(), "张三")
    return fed


def patient(fed, ref: str | None = None) -> str:
    return fed.token("patient", "330106", person=ref or fed.ref)


def consent(**changes) -> dict:
    data = {
        "grantee": "H37010200003",
        "dataClasses": ["LAB_RESULT", "IMAGING"],
        "purpose": "TREATMENT",
        "validUntil": (NOW + timedelta(days=30)).isoformat(),
    }
    return {**data, **changes}


async def grant(
    fed, app, key: str, data: dict, token: str | None = None, purpose: str = "PATIENT_ACCESS"
) -> dict:
    return await run(fed, app, token or patient(fed), purpose, GRANT, {"key": key, "input": data})


async def revoke(fed, app, key: str, consent_id: str, token: str | None = None) -> dict:
    return await run(
        fed, app, token or patient(fed), "PATIENT_ACCESS", REVOKE, {"key": key, "id": consent_id}
    )


@pytest.fixture
async def consents(fed):
    """The store the field policy reads, on the federation's gateway database."""
    engine = create_source_engine(fed.settings.gateway_spec)
    yield ConsentStore(engine)
    await engine.dispose()


async def test_grant_list_and_revoke(fed, consents):
    app = fed.app()
    body = await grant(fed, app, "g-1", consent())
    assert "errors" not in body, body
    c = body["data"]["grantConsent"]["consent"]
    assert c["status"] == "ACTIVE" and c["revokedAt"] is None
    assert c["granteeInstitution"]["name"] == "济南历下中心医院"
    assert c["dataClasses"] == ["LAB_RESULT", "IMAGING"] and c["purpose"] == "TREATMENT"

    # What the field policy reads: in force now, for this institution, class and purpose.
    (active,) = await consents.active_consents(fed.ref, datetime.now())
    assert active.covers("H37010200003", "lab_result", Purpose.TREATMENT, datetime.now())
    assert not active.covers("H37010200003", DataClass.DIAGNOSIS, "TREATMENT", datetime.now())
    assert not active.covers("H33010600001", DataClass.LAB_RESULT, "TREATMENT", datetime.now())

    mine = await run(fed, app, patient(fed), "PATIENT_ACCESS", MINE, {})
    assert [n["consentId"] for n in mine["data"]["myConsents"]["nodes"]] == [c["consentId"]]

    gone = await revoke(fed, app, "r-1", c["consentId"])
    assert gone["data"]["revokeConsent"]["consent"]["status"] == "REVOKED"
    assert await consents.active_consents(fed.ref, datetime.now()) == []
    mine = await run(fed, app, patient(fed), "PATIENT_ACCESS", MINE, {})
    assert mine["data"]["myConsents"]["nodes"][0]["status"] == "REVOKED"

    # Revoking again (another key) changes nothing: the first revocation time stays.
    twice = await revoke(fed, app, "r-2", c["consentId"])
    assert "errors" not in twice
    assert (
        twice["data"]["revokeConsent"]["consent"]["revokedAt"]
        == gone["data"]["revokeConsent"]["consent"]["revokedAt"]
    )


async def test_consent_opens_results_to_another_hospital_until_revoked(fed):
    await fed.add_result(fed.ref, value=13.37, reported_at=datetime.now() - timedelta(days=1))
    app = fed.app()
    jinan = fed.token("clinician", "H37010200003")
    read = """query($id: ID!) { testResults(personId: $id) { nodes { itemCode value } } }"""

    before = await run(fed, app, jinan, "TREATMENT", read, {"id": fed.ref})
    assert "13.37" not in str(before)
    body = await grant(fed, app, "g-1", consent())
    during = await run(fed, app, jinan, "TREATMENT", read, {"id": fed.ref})
    assert during["data"]["testResults"]["nodes"] == [{"itemCode": "2345-7", "value": 13.37}]
    await revoke(fed, app, "r-1", body["data"]["grantConsent"]["consent"]["consentId"])
    after = await run(fed, app, jinan, "TREATMENT", read, {"id": fed.ref})
    assert "13.37" not in str(after)  # revocation wins on the very next request


async def test_every_bad_field_is_listed_in_one_error_and_nothing_is_written(fed):
    app = fed.app()
    body = await grant(
        fed,
        app,
        "g 1",
        consent(
            grantee="X123",
            dataClasses=[],
            purpose="EMERGENCY",
            validFrom=(NOW + timedelta(days=40)).isoformat(),
        ),
    )
    assert problem_paths(body) == {
        ("idempotencyKey",),
        ("input", "grantee"),
        ("input", "dataClasses"),
        ("input", "purpose"),
        ("input", "validUntil"),
    }
    body = await grant(fed, app, "g-1", consent(grantee="H33010600099"))  # not in directory
    assert problem_paths(body) == {("input", "grantee")}
    body = await grant(
        fed, app, "g-1", consent(validUntil=(NOW + timedelta(days=6 * 365)).isoformat())
    )
    assert problem_paths(body) == {("input", "validUntil")}
    body = await grant(
        fed,
        app,
        "g-1",
        consent(
            validFrom=(NOW - timedelta(days=9)).isoformat(),
            validUntil=(NOW - timedelta(days=1)).isoformat(),
        ),
    )
    assert problem_paths(body) == {("input", "validUntil")}
    assert await count(fed, "gateway", ConsentRow) == 0


async def test_a_consent_that_has_not_begun_is_pending(fed, consents):
    app = fed.app()
    body = await grant(
        fed,
        app,
        "g-1",
        consent(
            grantee="P33010600101",
            dataClasses=["PRESCRIPTION"],
            validFrom=(NOW + timedelta(days=1)).isoformat(),
        ),
    )
    assert body["data"]["grantConsent"]["consent"]["status"] == "PENDING"
    assert await consents.active_consents(fed.ref, datetime.now()) == []
    # Positive control: once its period has begun the same consent is in force.
    [active] = await consents.active_consents(fed.ref, NOW + timedelta(days=1))
    assert active.grantee == "P33010600101" and active.is_active(NOW + timedelta(days=1))


async def test_an_expired_consent_is_not_active(fed, consents):
    stored = await consents.grant(
        consent_id="C" + "0" * 31,
        person_ref=fed.ref,
        grantee="H37010200003",
        data_classes=[DataClass.VISIT],
        purpose=Purpose.TREATMENT,
        valid_from=NOW - timedelta(days=10),
        valid_until=NOW - timedelta(days=1),
        now=NOW - timedelta(days=10),
    )
    assert stored.status(datetime.now()) is ConsentStatus.EXPIRED
    assert await consents.active_consents(fed.ref, datetime.now()) == []
    # ...but it was active while its period ran.
    assert len(await consents.active_consents(fed.ref, NOW - timedelta(days=5))) == 1


async def test_same_key_grants_once_and_refuses_other_input(fed):
    app = fed.app()
    first = await grant(fed, app, "once", consent())
    # The same classes in another order are the same input.
    again = await grant(fed, app, "once", consent(dataClasses=["IMAGING", "LAB_RESULT"]))
    assert again["data"]["grantConsent"]["replayed"] is True
    assert (
        again["data"]["grantConsent"]["consent"]["consentId"]
        == first["data"]["grantConsent"]["consent"]["consentId"]
    )
    other = await grant(fed, app, "once", consent(purpose="RESEARCH"))
    assert code(other) == "IDEMPOTENCY_KEY_REUSED"
    assert await count(fed, "gateway", ConsentRow) == 1


async def test_my_consents_pages(fed):
    app = fed.app()
    for i in range(3):
        await grant(
            fed,
            app,
            f"g-{i}",
            consent(
                dataClasses=["VISIT"], grantee=["H33010600001", "H33020300002", "H37010200003"][i]
            ),
        )
    seen, after = [], None
    for _ in range(3):
        body = await run(
            fed, app, patient(fed), "PATIENT_ACCESS", MINE, {"first": 2, "after": after}
        )
        page = body["data"]["myConsents"]
        seen += [n["grantee"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == ["H33010600001", "H33020300002", "H37010200003"]


async def test_consents_are_the_patients_own(fed, consents):
    app = fed.app()
    clinician = fed.token("clinician", "H37010200003")
    assert code(await grant(fed, app, "g-1", consent(), clinician, "TREATMENT")) == "FORBIDDEN"
    body = await run(fed, app, clinician, "TREATMENT", MINE, {})
    assert code(body) == "FORBIDDEN"

    mine = await grant(fed, app, "g-1", consent())
    consent_id = mine["data"]["grantConsent"]["consent"]["consentId"]
    other = await fed.add_person(make_id_number(seq=321), "钱七")
    assert code(await revoke(fed, app, "r-1", consent_id, patient(fed, other))) == "FORBIDDEN"
    theirs = await run(fed, app, patient(fed, other), "PATIENT_ACCESS", MINE, {})
    assert theirs["data"]["myConsents"]["nodes"] == []
    assert code(await revoke(fed, app, "r-1", "C" + "F" * 31)) == "NOT_FOUND"
    still = await consents.get(consent_id)
    assert still is not None and still.revoked_at is None
