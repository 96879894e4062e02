"""The policy as a Markdown table (role x purpose x class), generated so docs cannot drift.

Each cell summarises the decisions for every catalogued field of the class: one decision when
they agree, else the most common one with the exceptions named. Relations that change the
answer are named; "otherwise" covers every relation not listed.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from security.catalogue import Catalogue
from security.enforcement import Decision, Relation
from security.identity.assurance import ORDER
from security.identity.principal import Principal
from security.identity.roles import DEFAULT_PURPOSES, Purpose, Role
from security.policy.decide import decide
from security.policy.rules import Policy


def purposes_of(role: Role, policy: Policy) -> list[Purpose]:
    """A role's everyday purposes plus any purpose a rule grants it (break-glass)."""
    found = set(DEFAULT_PURPOSES.get(role, frozenset()))
    for rule in policy.rules:
        if role in rule.roles and len(rule.purposes) < len(Purpose):
            found |= rule.purposes
    return [p for p in Purpose if p in found]


def _summary(decisions: dict[str, Decision]) -> str:
    counts = Counter(decisions.values())
    common, _ = max(counts.items(), key=lambda kv: (kv[1], kv[0] == Decision.DENY))
    if len(counts) == 1:
        return common.value
    others = []
    for decision in (Decision.ALLOW, Decision.MASK, Decision.DENY):
        if decision is common or decision not in counts:
            continue
        names = sorted({f for f, d in decisions.items() if d is decision})
        others.append(f"{decision.value}: {', '.join(names)}")
    return f"{common.value} ({'; '.join(others)})"


def cell(
    role: Role, purpose: Purpose, data_class: str, catalogue: Catalogue, policy: Policy
) -> str:
    principal = Principal(
        sub="table",
        role=role,
        org="table",
        issuer="table",
        purposes=frozenset({purpose}),
        person_ref=None,
        token_id="-",  # noqa: S106
        expires_at=datetime.max.replace(tzinfo=UTC),
        # The strongest assurance: the cells show the rules; the assurance table below says
        # what a weaker check loses.
        assurance=ORDER[-1].value,
    )
    fields = [f for f in catalogue.fields() if f.data_class == data_class]
    by_relation: dict[Relation, str] = {}
    for relation in Relation:
        decisions = {
            f.name: decide(principal, purpose, f.type_name, f.name, relation, catalogue, policy)[0]
            for f in fields
        }
        by_relation[relation] = _summary(decisions)
    groups: dict[str, list[Relation]] = {}
    for relation, summary in by_relation.items():
        groups.setdefault(summary, []).append(relation)
    if len(groups) == 1:
        return next(iter(groups))
    rest = max(groups, key=lambda s: (len(groups[s]), s == Decision.DENY.value))
    parts = [
        f"{', '.join(r.value for r in rels)}: {summary}"
        for summary, rels in groups.items()
        if summary != rest
    ]
    parts.append(f"otherwise {rest}")
    return " · ".join(parts)


def markdown(catalogue: Catalogue, policy: Policy) -> str:
    classes = catalogue.classes_in_use()
    lines = [
        "| role | purpose | " + " | ".join(classes) + " |",
        "|---|---|" + "---|" * len(classes),
    ]
    for role in Role:
        for purpose in purposes_of(role, policy):
            cells = [cell(role, purpose, c, catalogue, policy) for c in classes]
            lines.append(f"| {role.value} | {purpose.value} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def trust_markdown(policy: Policy) -> str:
    """The assurance each level needs and what each kind of auditor sees, as Markdown."""
    return "\n".join([*_assurance(policy), "", *_audit_scope(policy)]) + "\n"


def _assurance(policy: Policy) -> list[str]:
    lines = [
        "Assurance of the caller's identity (`acr`, weakest first: "
        + " < ".join(a.value for a in ORDER)
        + "); below it a field is `FORBIDDEN_FIELD` with reason `ASSURANCE_TOO_LOW`:",
        "",
        "| roles | fields of level | need at least | why |",
        "|---|---|---|---|",
    ]
    for need in policy.assurance:
        roles = ", ".join(r.value for r in Role if r in need.roles)
        lines.append(f"| {roles} | {need.min_level}+ | {need.acr.value} | {need.why} |")
    return lines


def _audit_scope(policy: Policy) -> list[str]:
    lines = [
        "Audit scope (`auditEvents`, `auditAlerts`, `auditProof`, `handleAlert`, `closeAlert`, "
        "`/audit/*`):",
        "",
        "| an auditor of | sees |",
        "|---|---|",
    ]
    lines += [f"| {kind} | {sight} |" for kind, sight in policy.audit_scope.rows()]
    return lines
