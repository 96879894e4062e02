"""The policy file's trust sections: ``[[assurance]]`` (a minimum acr per level), ``[audit_scope]``
(what an auditor sees) and the break-glass institution cap: parsed strictly, decided at their
boundaries, shown in the policy table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from security.catalogue import parse as parse_catalogue
from security.enforcement import Decision, Relation
from security.identity.principal import Principal
from security.identity.roles import Purpose, Role
from security.policy import PolicyError, decide, default_policy
from security.policy.audit_scope import AuditScopeRules, Sight
from security.policy.decide import ASSURANCE_TOO_LOW
from security.policy.rules import parse
from security.policy.table import trust_markdown

EVERYTHING = {"roles": "*", "purposes": "*", "relations": "*", "decision": "ALLOW", "why": "all"}
FLOOR = {"level": 5, "relations": ["SELF"]}  # out of the way: these tests are about assurance
CAT = parse_catalogue(
    {
        "types": {
            "T": {
                "fields": {
                    "two": {"class": "identity", "level": 2},
                    "three": {"class": "identity", "level": 3},
                    "four": {"class": "identity", "level": 4, "mask": "name"},
                }
            }
        }
    }
)
NEED = {"roles": ["patient"], "min_level": 3, "acr": "real_name", "why": "synthetic"}


def patient(acr: str | None) -> Principal:
    return Principal(
        sub="p",
        role=Role.PATIENT,
        org="330106",
        issuer="t",
        purposes=frozenset({Purpose.PATIENT_ACCESS}),
        person_ref="a" * 32,
        token_id="-",
        expires_at=datetime.now(UTC),
        cert_type="01",
        assurance=acr,
    )


def _decide(principal, name, policy):
    return decide(principal, Purpose.PATIENT_ACCESS, "T", name, Relation.SELF, CAT, policy)


@pytest.mark.parametrize(
    "acr, three, four",
    [
        (None, False, False),  # no assurance meets no requirement
        ("credential", False, False),
        ("real_name", True, True),  # exactly the level asked for: enough
        ("real_person", True, True),
    ],
)
def test_a_minimum_assurance_holds_from_its_level_up(acr, three, four):
    policy = parse({"floor": FLOOR, "rules": [EVERYTHING], "assurance": [NEED]})
    assert _decide(patient(acr), "two", policy) == (Decision.ALLOW, "all")  # below min_level
    for name, allowed in (("three", three), ("four", four)):
        expected = (Decision.ALLOW, "all") if allowed else (Decision.DENY, ASSURANCE_TOO_LOW)
        assert _decide(patient(acr), name, policy) == expected, name


def test_an_assurance_rule_binds_only_its_roles_and_masked_values_too():
    policy = parse({"floor": FLOOR, "rules": [EVERYTHING], "assurance": [NEED]})
    clinician = replace(patient(None), role=Role.CLINICIAN, purposes=frozenset(Purpose))
    assert decide(clinician, Purpose.TREATMENT, "T", "four", Relation.TREATING, CAT, policy) == (
        Decision.ALLOW,
        "all",
    )
    masked = parse(
        {
            "floor": FLOOR,
            "rules": [{**EVERYTHING, "decision": "MASK", "why": "m"}],
            "assurance": [NEED],
        }
    )
    assert _decide(patient("real_name"), "four", masked) == (Decision.MASK, "m")
    assert _decide(patient("credential"), "four", masked) == (Decision.DENY, ASSURANCE_TOO_LOW)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"assurance": [{**NEED, "acr": "face"}]}, "assurance[0].acr: must be one of"),
        ({"assurance": [{**NEED, "min_level": 6}]}, "assurance[0].min_level: must be a level"),
        ({"assurance": [{**NEED, "roles": ["nurse"]}]}, "assurance[0].roles"),
        ({"assurance": [{**NEED, "extra": 1}]}, "assurance[0]: unknown keys extra"),
        ({"audit_scope": {"region": "everything"}}, "audit_scope.region: 'everything' is not"),
        ({"audit_scope": {"county": "all"}}, "audit_scope.county: is not a setting"),
        ({"break_glass": {"institution_per_day": -1}}, "break_glass institution_per_day"),
    ],
)
def test_the_trust_sections_are_parsed_strictly(raw, message):
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse({"floor": FLOOR, "rules": [EVERYTHING], **raw})


def test_the_shipped_policy_asks_a_real_person_check_for_patients_level_4():
    policy = default_policy()
    (need,) = policy.assurance
    assert need.roles == {Role.PATIENT} and need.min_level == 4 and need.acr == "real_person"
    assert policy.audit_scope == AuditScopeRules(Sight.PARTIES, Sight.REGION, Sight.ALL)
    assert policy.break_glass_institution_per_day == 20


@pytest.mark.parametrize(
    "org, parties, covered",
    [
        ("H33010600001", ["H33010600001"], True),  # its own clinician (actor)
        ("H33010600001", ["H37010200003", "H33010600001"], True),  # its data was read
        ("H33010600001", ["H33010600002", "330000"], False),  # a neighbour, its bureau
        ("330100", ["H33010600001"], True),  # an institution inside the city
        ("330100", ["330106"], True),
        ("330100", ["330000"], False),  # the province is not inside the city
        ("330100", ["H33020300002"], False),  # Ningbo
        ("330000", ["H33020300002", "370000"], True),
        ("100000", [], True),  # the national auditor sees even a refused login
        ("H33010600001", [], False),
    ],
)
def test_an_auditors_scope_by_the_kind_of_its_organisation(org, parties, covered):
    scope = default_policy().audit_scope.for_org(org, frozenset({"100000"}))
    assert scope.covers(parties) is covered


def test_the_policy_table_shows_the_assurance_and_the_audit_scope():
    table = trust_markdown(default_policy())
    assert "| patient | 4+ | real_person |" in table
    institution = "| an institution (H…, P…, R…, C…) | events in which its organisation is"
    assert institution in table
