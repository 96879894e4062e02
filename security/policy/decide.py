"""The one pure function that decides a field: ALLOW, MASK or DENY, and why."""

from __future__ import annotations

from functools import partial

from security.catalogue import Catalogue
from security.enforcement import Decider, Decision, Relation
from security.identity.assurance import rank
from security.identity.principal import Principal
from security.identity.roles import Purpose
from security.policy.rules import Policy

# The reason of a field denied because the token's assurance (acr) is below what the policy
# asks for the field's level: a client can ask the person for a stronger check and retry.
ASSURANCE_TOO_LOW = "ASSURANCE_TOO_LOW"


def decide(
    principal: Principal,
    purpose: Purpose,
    type_name: str,
    field_name: str,
    relation: Relation,
    catalogue: Catalogue,
    policy: Policy,
) -> tuple[Decision, str]:
    """Decide one (type, field) for this caller, purpose and row relation.

    Pure: the same inputs always give the same answer, so the guard may cache it per
    (type, field, relation) for the whole request. Anything it cannot resolve is DENY.
    """
    entry = catalogue.field(type_name, field_name)
    if entry is None:
        return Decision.DENY, "field not in the data catalogue"
    if purpose not in principal.purposes:
        # The edge refuses such requests already; a decision never relies on that alone.
        return Decision.DENY, f"purpose {purpose.value} not granted to the caller"
    if entry.level == 1:
        return Decision.ALLOW, "public (level 1)"
    role = principal.role
    for denial in policy.denials:
        if role in denial.roles and entry.data_class not in denial.except_classes:
            return Decision.DENY, denial.why
    for rule in policy.rules:
        if rule.matches(role, purpose, relation, entry.path, entry.data_class, entry.level):
            decision, why = rule.decision, rule.why
            break
    else:
        return Decision.DENY, (
            f"no rule lets {role.value} read {entry.data_class} for "
            f"{purpose.value} on a {relation.value} row"
        )
    floor = policy.floor
    if (
        decision is Decision.ALLOW
        and relation not in floor.relations
        and (entry.level >= floor.level or entry.data_class in floor.classes)
    ):
        decision, why = Decision.MASK, floor.why
    if decision is Decision.MASK and entry.mask is None:
        return Decision.DENY, f"{why} (no mask for this field)"
    for need in policy.assurance:
        # Masked or not, a value of this level is only for a caller checked this strongly.
        if (
            role in need.roles
            and entry.level >= need.min_level
            and rank(principal.assurance) < rank(need.acr)
        ):
            return Decision.DENY, ASSURANCE_TOO_LOW
    return decision, why


def make_decider(catalogue: Catalogue, policy: Policy) -> Decider:
    """``decide`` bound to a catalogue and policy, in the shape ``FieldGuard`` calls."""
    return partial(_decide_bound, catalogue=catalogue, policy=policy)


def _decide_bound(
    principal: Principal,
    purpose: Purpose,
    type_name: str,
    field_name: str,
    relation: Relation,
    *,
    catalogue: Catalogue,
    policy: Policy,
) -> tuple[Decision, str]:
    return decide(principal, purpose, type_name, field_name, relation, catalogue, policy)
