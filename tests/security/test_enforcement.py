"""The enforcement point on its own: a guard with no policy denies, each decision is applied
as it says (ALLOW opens, MASK opens and masks, DENY raises FORBIDDEN_FIELD and opens nothing),
and what was touched is recorded per person for the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from security.enforcement import NO_POLICY, Decision, FieldDenied, FieldGuard, Relation
from security.identity.principal import Principal
from security.identity.roles import Purpose, Role


def principal() -> Principal:
    return Principal(
        sub="t",
        role=Role.CLINICIAN,
        org="H33010600001",
        issuer="t",
        purposes=frozenset({Purpose.TREATMENT}),
        person_ref=None,
        token_id="-",
        expires_at=datetime.now(UTC),
    )


def fixed(decision: Decision, why: str = "because"):
    def decider(*_args):
        return decision, why

    return decider


def test_a_guard_built_without_a_decider_denies_every_field_and_opens_nothing():
    guard = FieldGuard(principal(), Purpose.TREATMENT)
    opened = []
    for relation in Relation:
        assert guard.decide("Person", "name", relation) == (Decision.DENY, NO_POLICY)
        with pytest.raises(FieldDenied) as denied:
            guard.read("Person", "name", relation, "p1", lambda: opened.append(1) or "张三")
        assert denied.value.extensions == {
            "code": "FORBIDDEN_FIELD",
            "type": "Person",
            "field": "name",
            "reason": NO_POLICY,
        }
    assert opened == []
    assert guard.accesses["p1"].denied == {"Person.name"}
    # Positive control: the same guard shape with a decider that allows opens the value.
    allowed = FieldGuard(principal(), Purpose.TREATMENT, fixed(Decision.ALLOW))
    assert allowed.read("Person", "name", Relation.TREATING, "p1", lambda: "张三") == "张三"


def test_allow_opens_mask_masks_and_each_is_recorded_for_its_person():
    guard = FieldGuard(principal(), Purpose.TREATMENT, fixed(Decision.ALLOW))
    # An ALLOW shows the value whole though a mask is at hand (a value the mask changes:
    # str.upper leaves "张三" as it is, which proved nothing).
    assert guard.read("Person", "name", Relation.TREATING, "p1", lambda: "Li", str.upper) == "Li"
    masking = FieldGuard(principal(), Purpose.TREATMENT, fixed(Decision.MASK))
    assert masking.read("Person", "phone", Relation.TREATING, "p2", lambda: "abc", str.upper) == (
        "ABC"
    )
    assert guard.accesses["p1"].read == {"Person.name"} and not guard.accesses["p1"].masked
    assert masking.accesses["p2"].masked == {"Person.phone"}
    assert not masking.accesses["p2"].read and not masking.accesses["p2"].denied


def test_mask_on_a_value_without_a_mask_is_a_denial_with_the_rules_reason():
    guard = FieldGuard(principal(), Purpose.TREATMENT, fixed(Decision.MASK, "masked for you"))
    with pytest.raises(FieldDenied) as denied:
        guard.read("Visit", "diagnosisText", Relation.TREATING, "p1", lambda: "secret")
    assert denied.value.reason == "masked for you"
    assert guard.accesses["p1"].denied == {"Visit.diagnosisText"}
    assert guard.admit("Person", "phone", Relation.TREATING, "p1", True) is Decision.MASK


def test_only_a_break_glass_relation_flags_the_request_and_names_the_person():
    guard = FieldGuard(principal(), Purpose.EMERGENCY, fixed(Decision.ALLOW))
    guard.read("Visit", "diagnosisText", Relation.TREATING, "p1", lambda: "x")
    assert not guard.break_glass and guard.break_glass_persons == set()
    guard.read("Visit", "diagnosisText", Relation.BREAK_GLASS, "p2", lambda: "x")
    guard.read("Visit", "diagnosisText", Relation.BREAK_GLASS, None, lambda: "x")
    assert guard.break_glass and guard.break_glass_persons == {"p2"}
    # A denied break-glass read opens nothing and flags nothing.
    denying = FieldGuard(principal(), Purpose.EMERGENCY)
    with pytest.raises(FieldDenied):
        denying.read("Visit", "diagnosisText", Relation.BREAK_GLASS, "p3", lambda: "x")
    assert not denying.break_glass and denying.break_glass_persons == set()


def test_decisions_are_cached_per_type_field_and_relation():
    calls = []

    def counting(_p, _purpose, type_name, field_name, relation):
        calls.append((type_name, field_name, relation))
        return Decision.ALLOW, "ok"

    guard = FieldGuard(principal(), Purpose.TREATMENT, counting)
    for _ in range(3):
        for relation in (Relation.TREATING, Relation.CONSENTED):
            guard.read("Person", "name", relation, "p1", lambda: "x")
            guard.read("Person", "gender", relation, "p1", lambda: "x")
    assert sorted(calls) == sorted(
        (t, f, r)
        for t, f in (("Person", "name"), ("Person", "gender"))
        for r in (Relation.TREATING, Relation.CONSENTED)
    )


def test_a_list_shows_a_row_unless_its_row_field_is_denied_and_logs_what_it_kept_back():
    showing = FieldGuard(principal(), Purpose.TREATMENT, fixed(Decision.MASK))
    assert showing.shows_row("TestResult", "resultId", Relation.TREATING, "p1")
    assert "p1" not in showing.accesses  # showing a row reads nothing by itself
    hiding = FieldGuard(principal(), Purpose.TREATMENT, fixed(Decision.DENY, "not yours"))
    assert not hiding.shows_row("TestResult", "resultId", Relation.NONE, "p1")
    assert hiding.accesses["p1"].denied == {"TestResult.resultId"}
    assert hiding.accesses["p1"].reasons == {"TestResult.resultId": "not yours"}
    assert not hiding.accesses["p1"].read and not hiding.accesses["p1"].masked
