"""The decision steps proved on synthetic policies, where the shipped rules cannot hide them.

Under ``security/policy.toml`` neither the floor nor the ``[[deny]]`` entries change a single
decision (the rules are already stricter), so only a policy that allows everything shows that
each step works: the floor masks or denies what it must, a denial wins over any rule, level-1
fields are open, a malformed file is refused at parse time, a rule's ``why`` reaches the
caller and the audit log, and the break-glass hours override reaches the ledger.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from security.catalogue import default_catalogue
from security.catalogue import parse as parse_catalogue
from security.enforcement import Decision, Relation
from security.identity.principal import Principal
from security.identity.roles import Purpose, Role
from security.policy import PolicyError, decide
from security.policy.break_glass import BreakGlassLedger
from security.policy.rules import parse

CAT = default_catalogue()
ALLOW, MASK, DENY = Decision.ALLOW, Decision.MASK, Decision.DENY
STRONG = ["SELF", "TREATING", "CONSENTED", "BREAK_GLASS"]
EVERYTHING = {
    "roles": "*",
    "purposes": "*",
    "relations": "*",
    "classes": "*",
    "decision": "ALLOW",
    "why": "synthetic: allow everything",
}
FLOOR = {"level": 4, "classes": ["diagnosis"], "relations": STRONG, "why": "synthetic floor"}


def who(role: Role, purpose: Purpose) -> Principal:
    return Principal(
        sub="t",
        role=role,
        org="H33010600001",
        issuer="t",
        purposes=frozenset({purpose}),
        person_ref=None,
        token_id="-",
        expires_at=datetime.now(UTC),
    )


def every_decision(policy, catalogue=CAT):
    """(role, purpose, field, relation) -> (decision, reason) over the whole catalogue."""
    for role, purpose in itertools.product(Role, Purpose):
        principal = who(role, purpose)
        for entry in catalogue.fields():
            for relation in Relation:
                yield (
                    (role, purpose, entry, relation),
                    decide(
                        principal, purpose, entry.type_name, entry.name, relation, catalogue, policy
                    ),
                )


# -- the floor ---------------------------------------------------------------------------------
def test_allow_everything_plus_the_floor_masks_or_denies_exactly_the_floor_fields():
    policy = parse({"floor": FLOOR, "rules": [EVERYTHING]})
    counts = {ALLOW: 0, MASK: 0, DENY: 0}
    for (_role, _purpose, entry, relation), (decision, why) in every_decision(policy):
        # Independent expectation, from the catalogue entry and the floor as written above.
        under_floor = entry.level >= 4 or entry.data_class == "diagnosis"
        if not under_floor or relation.value in STRONG:
            expected = (ALLOW, "synthetic: allow everything")
        elif entry.mask is not None:
            expected = (MASK, "synthetic floor")
        else:
            expected = (DENY, "synthetic floor (no mask for this field)")
        assert (decision, why) == expected, (entry.path, relation)
        counts[decision] += 1
    assert all(counts.values()), counts  # every branch was reached


FLOOR_CATALOGUE = parse_catalogue(
    {
        "types": {
            "T": {
                "fields": {
                    "three": {"class": "identity", "level": 3, "mask": "name"},
                    "four": {"class": "visit", "level": 4},
                    "coded": {"class": "diagnosis", "level": 2},
                }
            }
        }
    }
)


@pytest.mark.parametrize(
    "floor,expected",
    [
        ({}, {"three": ALLOW, "four": DENY, "coded": DENY}),
        ({"level": 3}, {"three": MASK, "four": DENY, "coded": DENY}),
        ({"level": 5}, {"three": ALLOW, "four": ALLOW, "coded": DENY}),
        ({"classes": []}, {"three": ALLOW, "four": DENY, "coded": ALLOW}),
        ({"classes": ["identity"]}, {"three": MASK, "four": DENY, "coded": ALLOW}),
    ],
    ids=["level 4", "level 3", "level 5", "no classes", "identity class"],
)
def test_the_floor_level_is_inclusive_and_its_classes_count_at_any_level(floor, expected):
    policy = parse({"floor": {**FLOOR, **floor}, "rules": [EVERYTHING]})
    doc = who(Role.CLINICIAN, Purpose.TREATMENT)
    for name, decision in expected.items():
        got = decide(doc, Purpose.TREATMENT, "T", name, Relation.REGION, FLOOR_CATALOGUE, policy)
        assert got[0] is decision, name
        # On a floor relation the floor never applies.
        strong = decide(
            doc, Purpose.TREATMENT, "T", name, Relation.CONSENTED, FLOOR_CATALOGUE, policy
        )
        assert strong[0] is ALLOW, name


def test_the_floor_never_opens_a_masked_or_denied_rule():
    for decision in ("MASK", "DENY"):
        policy = parse({"floor": FLOOR, "rules": [{**EVERYTHING, "decision": decision}]})
        for (_r, _p, entry, _rel), (got, _why) in every_decision(policy):
            if decision == "DENY" or entry.mask is None:
                assert got is DENY, entry.path
            else:
                assert got is MASK, entry.path


# -- absolute denials ----------------------------------------------------------------------------
def test_allow_everything_plus_a_denial_denies_the_role_everything_but_its_exceptions():
    policy = parse(
        {
            "floor": {**FLOOR, "relations": list(r.value for r in Relation)},
            "deny": [
                {"roles": ["researcher"], "except_classes": ["audit"], "why": "synthetic deny"}
            ],
            "rules": [EVERYTHING],
        }
    )
    seen = set()
    for (role, _purpose, entry, _relation), (decision, why) in every_decision(policy):
        if role is Role.RESEARCHER and entry.data_class != "audit":
            assert (decision, why) == (DENY, "synthetic deny"), entry.path
            seen.add("denied")
        else:
            assert (decision, why) == (ALLOW, "synthetic: allow everything"), (role, entry.path)
            seen.add("audit" if role is Role.RESEARCHER else "others")
    assert seen == {"denied", "audit", "others"}


def test_the_first_matching_denial_gives_its_reason_and_a_later_rule_cannot_undo_it():
    policy = parse(
        {
            "floor": FLOOR,
            "deny": [
                {"roles": ["clinician"], "why": "first"},
                {"roles": ["clinician", "patient"], "why": "second"},
            ],
            "rules": [EVERYTHING],
        }
    )
    doc, patient = who(Role.CLINICIAN, Purpose.TREATMENT), who(Role.PATIENT, Purpose.TREATMENT)
    args = ("Visit", "visitType", Relation.SELF, CAT, policy)
    assert decide(doc, Purpose.TREATMENT, *args) == (DENY, "first")
    assert decide(patient, Purpose.TREATMENT, *args) == (DENY, "second")


# -- level 1 -------------------------------------------------------------------------------------
PUBLIC_CATALOGUE = parse_catalogue(
    {
        "types": {
            "Notice": {
                "fields": {
                    "title": {"class": "enrollment", "level": 1},
                    "body": {"class": "enrollment", "level": 2},
                }
            }
        }
    }
)


def test_level_one_fields_are_open_to_everyone_even_under_no_rule_and_a_denial():
    policy = parse({"floor": FLOOR, "deny": [{"roles": [r.value for r in Role]}], "rules": []})
    for role, purpose, relation in itertools.product(Role, Purpose, Relation):
        principal = who(role, purpose)
        assert decide(
            principal, purpose, "Notice", "title", relation, PUBLIC_CATALOGUE, policy
        ) == (ALLOW, "public (level 1)")
        # Level 2 beside it is not public: the denial holds.
        assert decide(principal, purpose, "Notice", "body", relation, PUBLIC_CATALOGUE, policy)[
            0
        ] is (DENY)


def test_a_level_one_field_still_needs_a_granted_purpose():
    policy = parse({"floor": FLOOR, "rules": [EVERYTHING]})
    principal = who(Role.PATIENT, Purpose.PATIENT_ACCESS)
    decision, why = decide(
        principal, Purpose.RESEARCH, "Notice", "title", Relation.SELF, PUBLIC_CATALOGUE, policy
    )
    assert decision is DENY and "not granted" in why


def test_no_rule_matching_is_a_denial_that_names_role_class_purpose_and_relation():
    policy = parse({"floor": FLOOR, "rules": [{**EVERYTHING, "roles": ["patient"]}]})
    decision, why = decide(
        who(Role.PHARMACIST, Purpose.TREATMENT),
        Purpose.TREATMENT,
        "Visit",
        "visitType",
        Relation.PHARMACY,
        CAT,
        policy,
    )
    assert decision is DENY
    assert why == "no rule lets pharmacist read visit for TREATMENT on a PHARMACY row"


# -- rule matching -------------------------------------------------------------------------------
def test_rules_are_tried_in_order_and_each_condition_of_a_rule_must_hold():
    first = {**EVERYTHING, "roles": ["clinician"], "decision": "MASK", "why": "first"}
    policy = parse({"floor": FLOOR, "rules": [first, EVERYTHING]})
    doc = who(Role.CLINICIAN, Purpose.TREATMENT)
    args = (Purpose.TREATMENT, "Person", "birthDate", Relation.TREATING, CAT)
    assert decide(doc, *args, policy) == (MASK, "first")
    narrowed = {
        "purposes": ["SETTLEMENT"],
        "relations": ["REGION"],
        "classes": ["visit"],
        "fields": ["Visit.visitType"],
        "max_level": 2,
    }
    for key, value in narrowed.items():
        rule = {k: v for k, v in first.items() if not (key == "fields" and k == "classes")}
        policy = parse({"floor": FLOOR, "rules": [{**rule, key: value}, EVERYTHING]})
        assert decide(doc, *args, policy) == (ALLOW, "synthetic: allow everything"), key
    # max_level is inclusive: a level-3 field matches max_level 3.
    policy = parse({"floor": FLOOR, "rules": [{**first, "max_level": 3}, EVERYTHING]})
    assert decide(doc, *args, policy) == (MASK, "first")
    by_field = {k: v for k, v in first.items() if k != "classes"}
    policy = parse({"floor": FLOOR, "rules": [{**by_field, "fields": ["Person.birthDate"]}]})
    assert decide(doc, *args, policy) == (MASK, "first")


def test_every_field_a_shipped_rule_names_is_catalogued():
    from security.policy import default_policy

    named = {f for rule in default_policy().rules for f in rule.fields or ()}
    assert named, "the shipped policy names fields"
    assert {f for f in named if CAT.field(*f.split(".")) is None} == set()


# -- refused at parse time -----------------------------------------------------------------------
MALFORMED = {
    "empty roles": {"rules": [{**EVERYTHING, "roles": []}]},
    "empty purposes": {"rules": [{**EVERYTHING, "purposes": []}]},
    "empty relations": {"rules": [{**EVERYTHING, "relations": []}]},
    "empty classes": {"rules": [{**EVERYTHING, "classes": []}]},
    "empty fields": {"rules": [{**EVERYTHING, "classes": None, "fields": []}]},
    "fields a string": {"rules": [{**EVERYTHING, "classes": None, "fields": "Person.name"}]},
    "field without dot": {"rules": [{**EVERYTHING, "classes": None, "fields": ["Person"]}]},
    "field two dots": {"rules": [{**EVERYTHING, "classes": None, "fields": ["Person.name.x"]}]},
    "field empty part": {"rules": [{**EVERYTHING, "classes": None, "fields": ["Person."]}]},
    "field no type": {"rules": [{**EVERYTHING, "classes": None, "fields": [".name"]}]},
    "field not text": {"rules": [{**EVERYTHING, "classes": None, "fields": [3]}]},
    "field spaces": {"rules": [{**EVERYTHING, "classes": None, "fields": ["Person. name"]}]},
    "fields and classes": {"rules": [{**EVERYTHING, "fields": ["Person.name"]}]},
    "unknown class": {"rules": [{**EVERYTHING, "classes": ["gossip"]}]},
    "unknown role": {"rules": [{**EVERYTHING, "roles": ["surgeon"]}]},
    "unknown relation": {"rules": [{**EVERYTHING, "relations": ["COUSIN"]}]},
    "unknown key": {"rules": [{**EVERYTHING, "when": "always"}]},
    "no decision": {"rules": [{k: v for k, v in EVERYTHING.items() if k != "decision"}]},
    "bad decision": {"rules": [{**EVERYTHING, "decision": "MAYBE"}]},
    "max_level 0": {"rules": [{**EVERYTHING, "max_level": 0}]},
    "max_level 6": {"rules": [{**EVERYTHING, "max_level": 6}]},
    "max_level true": {"rules": [{**EVERYTHING, "max_level": True}]},
    "max_level text": {"rules": [{**EVERYTHING, "max_level": "3"}]},
    "floor level 0": {"floor": {**FLOOR, "level": 0}},
    "floor level 6": {"floor": {**FLOOR, "level": 6}},
    "floor level text": {"floor": {**FLOOR, "level": "4"}},
    "floor no relations": {"floor": {k: v for k, v in FLOOR.items() if k != "relations"}},
    "floor empty relations": {"floor": {**FLOOR, "relations": []}},
    "floor any relation": {"floor": {**FLOOR, "relations": "*"}},
    "floor unknown class": {"floor": {**FLOOR, "classes": ["gossip"]}},
    "deny empty roles": {"deny": [{"roles": []}]},
    "deny any role": {"deny": [{"roles": "*"}]},
    "deny unknown exception": {"deny": [{"roles": ["admin"], "except_classes": ["gossip"]}]},
    "window 0": {"relations": {"treating_window_days": 0}},
    "window 3651": {"relations": {"treating_window_days": 3651}},
    "persons_per_day -1": {"break_glass": {"persons_per_day": -1}},
    "persons_per_day 1001": {"break_glass": {"persons_per_day": 1001}},
    "hours 0": {"break_glass": {"hours": 0}},
    "hours 169": {"break_glass": {"hours": 169}},
    "hours true": {"break_glass": {"hours": True}},
    "hours text": {"break_glass": {"hours": "4"}},
    "grades not a list": {"grades": {"role": "researcher"}},
    "supervision not a list": {"supervision": {"role": "agency"}},
    "assurance any role": {
        "assurance": [{"roles": "*", "min_level": 4, "acr": "real_person", "why": "x"}]
    },
}


def _policy(**parts):
    raw = {"floor": FLOOR, "rules": [EVERYTHING], **parts}
    for rule in raw.get("rules", []):
        if rule.get("classes", "") is None:
            del rule["classes"]
    return raw


@pytest.mark.parametrize("parts", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_policy_is_refused_at_parse_time(parts):
    raw = _policy(**{k: [dict(r) for r in v] if k == "rules" else v for k, v in parts.items()})
    # PolicyError exactly: what the gateway's start-up turns into a one-line refusal.
    with pytest.raises(PolicyError) as refused:
        parse(raw)
    assert type(refused.value) is PolicyError


WELL_FORMED = {
    "fields alone": {"rules": [{**EVERYTHING, "classes": None, "fields": ["Person.name"]}]},
    "max_level 1": {"rules": [{**EVERYTHING, "max_level": 1}]},
    "max_level 5": {"rules": [{**EVERYTHING, "max_level": 5}]},
    "floor level 1": {"floor": {**FLOOR, "level": 1}},
    "floor level 5": {"floor": {**FLOOR, "level": 5}},
    "floor no classes": {"floor": {**FLOOR, "classes": []}},
    "deny without exceptions": {"deny": [{"roles": ["admin"]}]},
    "window 1": {"relations": {"treating_window_days": 1}},
    "window 3650": {"relations": {"treating_window_days": 3650}},
    "persons_per_day 0": {"break_glass": {"persons_per_day": 0}},
    "persons_per_day 1000": {"break_glass": {"persons_per_day": 1000}},
    "hours 0.01": {"break_glass": {"hours": 0.01}},
    "hours 168": {"break_glass": {"hours": 168}},
}


@pytest.mark.parametrize("parts", WELL_FORMED.values(), ids=WELL_FORMED.keys())
def test_the_boundaries_just_inside_are_accepted(parts):
    """The positive control of the refusals above: each limit's own edge parses."""
    raw = _policy(**{k: [dict(r) for r in v] if k == "rules" else v for k, v in parts.items()})
    assert parse(raw).rules


def test_a_policy_that_leaves_the_limits_out_gets_the_documented_ones():
    """A policy file without [relations], [break_glass] or a floor level gets the limits
    docs/policy.md states (the shipped file spells the same values out)."""
    from security.policy import default_policy

    shipped = default_policy()
    policy = parse({"floor": {"relations": STRONG}, "rules": [EVERYTHING]})
    assert policy.treating_window_days == shipped.treating_window_days == 180
    assert policy.break_glass_persons_per_day == shipped.break_glass_persons_per_day == 5
    assert policy.break_glass_hours == shipped.break_glass_hours == 4.0
    assert policy.break_glass_institution_per_day == 20
    assert policy.break_glass_institution_per_day == shipped.break_glass_institution_per_day
    assert policy.floor.level == shipped.floor.level == 4
    assert policy.floor.classes == frozenset() and policy.assurance == ()
    assert policy.floor.why == "level too high for this relation"
    assert policy.denials == () and policy.national_orgs == frozenset()
    # What the floor reason and a denial's reason default to is what a caller is told.
    denied = parse({**_policy(), "deny": [{"roles": ["admin"]}]})
    assert [d.why for d in denied.denials] == ["denied"]
    assert parse({"floor": FLOOR, "rules": [{**EVERYTHING, "why": ""}]}).rules[0].why == "allow"


@pytest.mark.parametrize(
    "limit, low, high",
    [
        ("persons_per_day", 0, 1000),
        ("institution_per_day", 0, 100000),
        ("hours", 0.01, 168),
    ],
)
def test_each_break_glass_limit_holds_at_its_edges_and_not_past_them(limit, low, high):
    assert getattr(parse(_policy(break_glass={limit: low})), f"break_glass_{limit}") == low
    assert getattr(parse(_policy(break_glass={limit: high})), f"break_glass_{limit}") == high
    step = 0.001 if isinstance(low, float) else 1
    for bad in (low - step, high + step):
        with pytest.raises(PolicyError, match=f"break_glass {limit}"):
            parse(_policy(break_glass={limit: bad}))


def test_the_classes_error_says_whether_an_empty_list_is_allowed():
    """A rule's classes may not be empty (it would match nothing); the floor's may."""
    with pytest.raises(PolicyError, match=r"rules\[0\]: classes must be a non-empty list of"):
        parse(_policy(rules=[{**EVERYTHING, "classes": []}]))
    with pytest.raises(PolicyError, match=r"floor\.classes: classes must be a list of identity"):
        parse(_policy(floor={**FLOOR, "classes": "diagnosis"}))
    assert parse(_policy(floor={**FLOOR, "classes": []})).floor.classes == frozenset()


def test_a_parsed_policy_cannot_be_changed_in_place():
    """The gateway shares one parsed policy (``default_policy`` is cached): a caller that could
    edit a rule, a denial, the floor or an assurance rule would change every later decision."""
    from dataclasses import FrozenInstanceError

    policy = parse(
        _policy(
            deny=[{"roles": ["admin"]}],
            assurance=[{"roles": ["patient"], "min_level": 4, "acr": "real_person"}],
        )
    )
    for obj, name, value in [
        (policy, "floor", None),
        (policy.rules[0], "decision", DENY),
        (policy.denials[0], "why", "changed"),
        (policy.floor, "level", 5),
        (policy.assurance[0], "min_level", 5),
    ]:
        with pytest.raises(FrozenInstanceError):
            setattr(obj, name, value)


# -- break-glass hours ---------------------------------------------------------------------------
def test_the_break_glass_overrides_win_over_the_file_and_are_checked_like_it():
    raw = _policy(break_glass={"persons_per_day": 5, "hours": 4})
    assert parse(raw).break_glass_hours == 4.0
    policy = parse(raw, {"break_glass_hours": 0.5, "break_glass_persons_per_day": 2})
    assert policy.break_glass_hours == 0.5 and policy.break_glass_persons_per_day == 2
    assert parse(raw, {"treating_window_days": 30}).treating_window_days == 30
    for bad in ({"break_glass_hours": 0}, {"break_glass_hours": 200}, {"break_glass_hours": "1"}):
        with pytest.raises(PolicyError):
            parse(raw, bad)


async def test_a_grant_lasts_the_overridden_hours_then_is_renewed(make_spec):
    policy = parse(_policy(), {"break_glass_hours": 1.5})
    spec = make_spec("gateway")
    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    ledger = BreakGlassLedger(
        engine, persons_per_day=policy.break_glass_persons_per_day, hours=policy.break_glass_hours
    )
    start = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    try:
        first = await ledger.grant("iss|doc", "H33010600001", ["p1"], start)
        assert first.granted == {"p1"} and first.used_today == 1
        rows = await _grants(engine)
        assert [(r.granted_at, r.expires_at) for r in rows] == [
            (start, start + timedelta(hours=1.5))
        ]
        # Within the 1.5 hours the grant stands as it is; at its end it is renewed, same slot.
        inside = await ledger.grant("iss|doc", "H33010600001", ["p1"], start + timedelta(hours=1))
        assert inside.granted == {"p1"} and inside.used_today == 1
        assert [r.expires_at for r in await _grants(engine)] == [start + timedelta(hours=1.5)]
        later = start + timedelta(hours=1.5)
        renewed = await ledger.grant("iss|doc", "H33010600001", ["p1"], later)
        assert renewed.granted == {"p1"} and renewed.used_today == 1
        assert [(r.slot, r.expires_at) for r in await _grants(engine)] == [
            (1, later + timedelta(hours=1.5))
        ]
    finally:
        await engine.dispose()


async def _grants(engine):
    from sqlalchemy import select

    from security.policy.break_glass import TABLE

    async with engine.connect() as conn:
        rows = (await conn.execute(select(TABLE))).all()
    out = []
    for row in rows:
        values = dict(row._mapping)
        for key in ("granted_at", "expires_at"):  # SQLite drops the zone; it stored UTC
            if values[key].tzinfo is None:
                values[key] = values[key].replace(tzinfo=UTC)
        out.append(SimpleNamespace(**values))
    return out
