"""``ConsentStore`` against the real gateway database (SQLite and PostgreSQL): what it stores,
which consents each query returns at the edges of their period, revocation and paging. The
API tests (``tests/schema/mutations/test_consents.py``) show the same through GraphQL; these
pin each query's conditions one by one, where a wrong one would open or hide a record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from security.consent import (
    ConsentNotFound,
    ConsentStatus,
    ConsentStore,
    DataClass,
    NotYourConsent,
)
from security.identity.roles import Purpose

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ALICE, BOB = "a" * 32, "b" * 32
HOSPITAL, OTHER = "H37010200003", "H33010600001"


@pytest.fixture
async def store(make_spec):
    spec = make_spec("gateway")
    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    yield ConsentStore(engine)
    await engine.dispose()


async def grant(store, consent_id, person=ALICE, **changes):
    fields = {
        "consent_id": consent_id,
        "person_ref": person,
        "grantee": HOSPITAL,
        "data_classes": [DataClass.VISIT, DataClass.LAB_RESULT],
        "purpose": Purpose.TREATMENT,
        "valid_from": NOW - timedelta(days=1),
        "valid_until": NOW + timedelta(days=1),
        "now": NOW - timedelta(days=1),
        **changes,
    }
    return await store.grant(**fields)


async def test_a_grant_is_stored_as_given_in_utc_and_a_retry_returns_the_first(store):
    shanghai = datetime(2026, 6, 1, 20, 0).astimezone()  # any zone: stored as the same moment
    first = await grant(store, "C-1", valid_from=shanghai, now=shanghai)
    assert first.consent_id == "C-1" and first.person_ref == ALICE and first.grantee == HOSPITAL
    assert first.data_classes == {DataClass.VISIT, DataClass.LAB_RESULT}
    assert first.purpose is Purpose.TREATMENT
    assert first.valid_from == shanghai and first.valid_from.tzinfo is not None
    assert first.valid_until == NOW + timedelta(days=1) and first.revoked_at is None
    assert first.granted_at == shanghai
    # The same id again (a retried request) changes nothing, whatever else it says.
    again = await grant(store, "C-1", grantee=OTHER, data_classes=[DataClass.DIAGNOSIS])
    assert again == first == await store.get("C-1")
    assert await store.get("C-2") is None


async def test_active_consents_hold_from_their_start_until_just_before_their_end(store):
    await grant(store, "C-1")
    consent = await store.get("C-1")
    start, end = consent.valid_from, consent.valid_until
    for moment, active in [
        (start - timedelta(microseconds=1), False),
        (start, True),
        (NOW, True),
        (end - timedelta(microseconds=1), True),
        (end, False),
    ]:
        found = await store.active_consents(ALICE, moment)
        assert [c.consent_id for c in found] == (["C-1"] if active else []), moment
        assert consent.is_active(moment) is active  # the store and the consent agree
        granted = await store.consented_to(HOSPITAL, Purpose.TREATMENT, moment)
        assert granted == ({ALICE: frozenset({"visit", "lab_result"})} if active else {}), moment


async def test_active_consents_for_many_persons_are_each_persons_own(store):
    await grant(store, "C-1")
    await grant(store, "C-2", now=NOW - timedelta(hours=1))
    await grant(store, "C-3", person=BOB)
    await grant(store, "C-4", person=BOB, valid_from=NOW + timedelta(hours=1))  # pending
    found = await store.active_consents_for([ALICE, BOB, ALICE, "c" * 32], NOW)
    assert {p: [c.consent_id for c in cs] for p, cs in found.items()} == {
        ALICE: ["C-1", "C-2"],  # oldest grant first
        BOB: ["C-3"],
    }
    assert await store.active_consents_for([], NOW) == {}
    assert [c.consent_id for c in await store.active_consents(BOB, NOW)] == ["C-3"]
    assert await store.active_consents("c" * 32, NOW) == []


async def test_consented_to_names_only_the_grantee_and_purpose_asked(store):
    await grant(store, "C-1")
    await grant(store, "C-2", person=BOB, data_classes=[DataClass.DIAGNOSIS])
    await grant(store, "C-3", person=BOB, grantee=OTHER)
    await grant(store, "C-4", person="c" * 32, purpose=Purpose.RESEARCH)
    assert await store.consented_to(HOSPITAL, Purpose.TREATMENT, NOW) == {
        ALICE: frozenset({"visit", "lab_result"}),
        BOB: frozenset({"diagnosis"}),
    }
    assert await store.consented_to(HOSPITAL, "treatment", NOW) == await store.consented_to(
        HOSPITAL, Purpose.TREATMENT, NOW
    )
    assert await store.consented_to(OTHER, Purpose.TREATMENT, NOW) == {
        BOB: frozenset({"visit", "lab_result"})
    }
    assert await store.consented_to(HOSPITAL, Purpose.RESEARCH, NOW) == {
        "c" * 32: frozenset({"visit", "lab_result"})
    }
    # Two consents of one person to one grantee: the classes of both.
    await grant(store, "C-5", person=BOB, data_classes=[DataClass.IMAGING])
    assert (await store.consented_to(HOSPITAL, Purpose.TREATMENT, NOW))[BOB] == {
        "diagnosis",
        "imaging",
    }


async def test_a_revocation_ends_a_consent_at_once_and_only_its_person_may_make_it(store):
    await grant(store, "C-1")
    await grant(store, "C-2")
    with pytest.raises(NotYourConsent):
        await store.revoke("C-1", person_ref=BOB, now=NOW)
    with pytest.raises(ConsentNotFound):
        await store.revoke("C-9", person_ref=ALICE, now=NOW)
    assert (await store.get("C-1")).revoked_at is None  # the refusals changed nothing
    revoked = await store.revoke("C-1", person_ref=ALICE, now=NOW)
    assert revoked.revoked_at == NOW and revoked.status(NOW) is ConsentStatus.REVOKED
    assert [c.consent_id for c in await store.active_consents(ALICE, NOW)] == ["C-2"]
    assert await store.consented_to(HOSPITAL, Purpose.TREATMENT, NOW) == {
        ALICE: frozenset({"visit", "lab_result"})  # C-2's
    }
    # Revoking again keeps the first revocation time.
    again = await store.revoke("C-1", person_ref=ALICE, now=NOW + timedelta(hours=1))
    assert again.revoked_at == NOW == (await store.get("C-1")).revoked_at
    assert (await store.get("C-2")).revoked_at is None


async def test_a_persons_consents_page_newest_grant_first_in_every_state(store):
    for i in range(5):
        await grant(store, f"C-{i}", now=NOW - timedelta(hours=5 - i))
    await grant(store, "C-x", now=NOW - timedelta(hours=1))  # the same time as C-4: id decides
    await grant(store, "C-b", person=BOB)
    await store.revoke("C-2", person_ref=ALICE, now=NOW)
    first = await store.list_for(ALICE, limit=3)
    assert [c.consent_id for c in first] == ["C-x", "C-4", "C-3"]
    last = first[-1]
    rest = await store.list_for(ALICE, limit=10, after=(last.granted_at, last.consent_id))
    assert [c.consent_id for c in rest] == ["C-2", "C-1", "C-0"]  # the revoked one too
    assert rest[0].revoked_at == NOW
    assert [c.consent_id for c in await store.list_for(BOB, limit=10)] == ["C-b"]
