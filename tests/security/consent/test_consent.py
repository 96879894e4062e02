"""``Consent.covers``, the one consent check (``schema.relations`` uses it per class): each of
grantee, class, purpose and period must hold, at the boundaries of the period."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from security.consent import Consent, ConsentStatus, DataClass
from security.identity.roles import Purpose

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CONSENT = Consent(
    consent_id="C-1",
    person_ref="p" * 32,
    grantee="H37010200003",
    data_classes=frozenset({DataClass.LAB_RESULT, DataClass.VISIT}),
    purpose=Purpose.TREATMENT,
    valid_from=NOW - timedelta(days=1),
    valid_until=NOW + timedelta(days=1),
    granted_at=NOW - timedelta(days=1),
    revoked_at=None,
)
ASK = ("H37010200003", "lab_result", Purpose.TREATMENT, NOW)


def test_a_consent_covers_its_grantee_classes_and_purpose_in_any_spelling():
    assert CONSENT.covers(*ASK)
    for data_class in ("lab_result", "LAB_RESULT", DataClass.LAB_RESULT, "visit"):
        assert CONSENT.covers("H37010200003", data_class, Purpose.TREATMENT, NOW), data_class
    assert CONSENT.covers("H37010200003", "lab_result", "TREATMENT", NOW)
    assert CONSENT.covers("H37010200003", "lab_result", "treatment", NOW)


@pytest.mark.parametrize(
    "ask",
    [
        ("H37010200004", "lab_result", Purpose.TREATMENT, NOW),  # another institution
        ("h37010200003", "lab_result", Purpose.TREATMENT, NOW),  # codes are exact
        ("H37010200003", "diagnosis", Purpose.TREATMENT, NOW),  # a class not named
        ("H37010200003", "audit", Purpose.TREATMENT, NOW),  # a class no consent can name
        ("H37010200003", "lab_result", Purpose.RESEARCH, NOW),  # another purpose
        ("H37010200003", "lab_result", Purpose.EMERGENCY, NOW),
    ],
    ids=["grantee", "grantee case", "class", "audit class", "research", "emergency"],
)
def test_any_one_mismatch_is_not_covered(ask):
    assert not CONSENT.covers(*ask)


def test_the_period_starts_inclusive_and_ends_exclusive():
    at = CONSENT.valid_from
    assert CONSENT.status(at) is ConsentStatus.ACTIVE and CONSENT.covers(*ASK[:3], at)
    before = at - timedelta(microseconds=1)
    assert CONSENT.status(before) is ConsentStatus.PENDING and not CONSENT.covers(*ASK[:3], before)
    end = CONSENT.valid_until
    assert CONSENT.status(end) is ConsentStatus.EXPIRED and not CONSENT.covers(*ASK[:3], end)
    last = end - timedelta(microseconds=1)
    assert CONSENT.status(last) is ConsentStatus.ACTIVE and CONSENT.covers(*ASK[:3], last)


def test_a_revocation_wins_whatever_the_clock_says():
    # Recorded "in the future" by a worker whose clock runs ahead: still revoked now.
    revoked = replace(CONSENT, revoked_at=NOW + timedelta(hours=1))
    assert revoked.status(NOW) is ConsentStatus.REVOKED
    assert not revoked.covers(*ASK)
    assert CONSENT.covers(*ASK)  # the same consent unrevoked: covered


def test_naive_times_are_local_time():
    local = NOW.astimezone().replace(tzinfo=None)
    assert CONSENT.covers(*ASK[:3], local)
    assert not CONSENT.covers(
        *ASK[:3], (CONSENT.valid_until + timedelta(seconds=1)).astimezone().replace(tzinfo=None)
    )


def test_a_consent_cannot_be_changed_in_place():
    """Loaders share the consents they read across a request's resolvers: none may revoke,
    extend or widen one for the others by editing it."""
    from dataclasses import FrozenInstanceError

    for name, value in [
        ("revoked_at", None),
        ("valid_until", NOW + timedelta(days=365)),
        ("grantee", "H33010600001"),
    ]:
        with pytest.raises(FrozenInstanceError):
            setattr(CONSENT, name, value)
    assert {CONSENT, replace(CONSENT)} == {CONSENT}  # hashable, equal by value
