"""The policy file (``security/policy.toml``) parsed into rules the decider can match fast."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from security.catalogue import CLASSES
from security.enforcement import Decision, Relation
from security.errors import MedfedError
from security.identity.assurance import Assurance
from security.identity.roles import Purpose, Role
from security.policy.audit_scope import AuditScope, AuditScopeRules, parse_audit_scope
from security.policy.grades import Grade, GradeError, parse_grades
from security.policy.supervision import (
    SupervisionGrant,
    SupervisionPolicyError,
    parse_supervision,
    scope_for,
)

POLICY_FILE = Path(__file__).resolve().parents[1] / "policy.toml"

ANY = "*"


class PolicyError(MedfedError, ValueError):
    """The policy file is malformed; the gateway must not start on it."""


@dataclass(frozen=True, slots=True)
class Rule:
    roles: frozenset[Role]
    purposes: frozenset[Purpose]
    relations: frozenset[Relation]
    classes: frozenset[str] | None  # None: every class
    fields: frozenset[str] | None  # "Type.field"; when given, classes are not consulted
    max_level: int | None
    decision: Decision
    why: str

    def matches(
        self,
        role: Role,
        purpose: Purpose,
        relation: Relation,
        path: str,
        data_class: str,
        level: int,
    ) -> bool:
        if role not in self.roles or purpose not in self.purposes:
            return False
        if relation not in self.relations:
            return False
        if self.fields is not None:
            if path not in self.fields:
                return False
        elif self.classes is not None and data_class not in self.classes:
            return False
        return self.max_level is None or level <= self.max_level


@dataclass(frozen=True, slots=True)
class Denial:
    roles: frozenset[Role]
    except_classes: frozenset[str]
    why: str


@dataclass(frozen=True, slots=True)
class Floor:
    level: int
    classes: frozenset[str]
    relations: frozenset[Relation]
    why: str


@dataclass(frozen=True, slots=True)
class AssuranceRule:
    """Fields of ``min_level`` and above need a token assurance (``acr``) of at least ``acr``
    for these roles; below it they are denied with reason ASSURANCE_TOO_LOW."""

    roles: frozenset[Role]
    min_level: int
    acr: Assurance
    why: str


@dataclass(frozen=True)
class Policy:
    """A parsed policy file. No field has a default here: :func:`parse` alone gives the
    defaults of a file that leaves a setting out, so there is one place that says them."""

    rules: tuple[Rule, ...]
    denials: tuple[Denial, ...]
    floor: Floor
    treating_window_days: int
    national_orgs: frozenset[str]
    break_glass_persons_per_day: int
    break_glass_hours: float
    # Opening grades of the statistics and extracts (security.policy.grades).
    grades: tuple[Grade, ...]
    assurance: tuple[AssuranceRule, ...]
    break_glass_institution_per_day: int
    audit_scope: AuditScopeRules
    # Fund supervision views ([[supervision]], security.policy.supervision).
    supervision: tuple[SupervisionGrant, ...]

    def supervision_scope(self, role: Role, purpose: Purpose, view: str, org: str) -> str | None:
        """The region prefix a supervisor may see in ``view`` ("" every region), or None."""
        return scope_for(self.supervision, role, purpose, view, org, self.national_orgs)

    def auditor_scope(self, org: str) -> AuditScope:
        """The audit events an auditor of ``org`` may see ([audit_scope])."""
        return self.audit_scope.for_org(org, self.national_orgs)


def _set(where: str, raw: Any, enum: Any, allow_any: bool = True) -> frozenset:
    if raw == ANY and allow_any:
        return frozenset(enum)
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f'{where}: expected a non-empty list or "*"')
    try:
        return frozenset(enum(v) for v in raw)
    except ValueError as exc:
        raise PolicyError(f"{where}: {exc}") from None


def _classes(where: str, raw: Any, *, allow_empty: bool = True) -> frozenset[str]:
    if (
        not isinstance(raw, list)
        or (not raw and not allow_empty)
        or any(c not in CLASSES for c in raw)
    ):
        many = "a list" if allow_empty else "a non-empty list"
        raise PolicyError(f"{where}: classes must be {many} of {', '.join(CLASSES)}")
    return frozenset(raw)


# "Type.field" as the schema spells them: a type name, one dot, a field name.
FIELD_PATH = re.compile(r"[A-Z][A-Za-z0-9]*\.[a-z][A-Za-z0-9]*")


def _fields(where: str, raw: Any) -> frozenset[str]:
    # An empty list would make a rule that matches nothing: a typo, not a policy.
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(f, str) and FIELD_PATH.fullmatch(f) for f in raw)
    ):
        raise PolicyError(f'{where}: fields must be a non-empty list of "Type.field"')
    return frozenset(raw)


def _level(where: str, raw: Any) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= 5:
        raise PolicyError(f"{where}: must be a level 1-5, not {raw!r}")
    return raw


def _rule(i: int, raw: Mapping[str, Any]) -> Rule:
    where = f"rules[{i}]"
    unknown = set(raw) - {
        "roles",
        "purposes",
        "relations",
        "classes",
        "fields",
        "max_level",
        "decision",
        "why",
    }
    if unknown:
        raise PolicyError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    if "fields" in raw and "classes" in raw:
        # With fields the classes are not consulted; both would say two different things.
        raise PolicyError(f"{where}: give fields or classes, not both")
    classes_raw = raw.get("classes", ANY)
    fields = _fields(where, raw["fields"]) if "fields" in raw else None
    classes = (
        None
        if fields is not None or classes_raw == ANY
        else _classes(where, classes_raw, allow_empty=False)
    )
    max_level = raw.get("max_level")
    if max_level is not None:
        max_level = _level(f"{where}.max_level", max_level)
    try:
        decision = Decision(raw["decision"])
    except (KeyError, ValueError):
        raise PolicyError(f"{where}: decision must be ALLOW, MASK or DENY") from None
    return Rule(
        roles=_set(f"{where}.roles", raw.get("roles"), Role),
        purposes=_set(f"{where}.purposes", raw.get("purposes"), Purpose),
        relations=_set(f"{where}.relations", raw.get("relations"), Relation),
        classes=classes,
        fields=fields,
        max_level=max_level,
        decision=decision,
        why=str(raw.get("why") or decision.value.lower()),
    )


def _assurance(i: int, raw: Mapping[str, Any]) -> AssuranceRule:
    where = f"assurance[{i}]"
    unknown = set(raw) - {"roles", "min_level", "acr", "why"}
    if unknown:
        raise PolicyError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    try:
        acr = Assurance(raw.get("acr"))
    except ValueError:
        levels = ", ".join(a.value for a in Assurance)
        raise PolicyError(f"{where}.acr: must be one of {levels}, weakest first") from None
    return AssuranceRule(
        roles=_set(f"{where}.roles", raw.get("roles"), Role, False),
        min_level=_level(f"{where}.min_level", raw.get("min_level")),
        acr=acr,
        why=str(raw.get("why") or f"level {raw.get('min_level')}+ needs acr {acr.value}"),
    )


def parse(raw: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> Policy:
    floor_raw = raw.get("floor", {})
    floor = Floor(
        level=_level("floor.level", floor_raw.get("level", 4)),
        classes=_classes("floor.classes", floor_raw.get("classes", [])),
        relations=_set("floor.relations", floor_raw.get("relations"), Relation, False),
        why=str(floor_raw.get("why", "level too high for this relation")),
    )
    denials = tuple(
        Denial(
            _set(f"deny[{i}].roles", d.get("roles"), Role, False),
            _classes(f"deny[{i}].except_classes", d.get("except_classes", [])),
            str(d.get("why", "denied")),
        )
        for i, d in enumerate(raw.get("deny", []))
    )
    rules = tuple(_rule(i, r) for i, r in enumerate(raw.get("rules", [])))
    relations = {**raw.get("relations", {}), **(overrides or {})}
    glass = raw.get("break_glass", {})
    window = relations.get("treating_window_days", 180)
    per_day = (overrides or {}).get("break_glass_persons_per_day", glass.get("persons_per_day", 5))
    hours = (overrides or {}).get("break_glass_hours", glass.get("hours", 4))
    per_institution = (overrides or {}).get(
        "break_glass_institution_per_day", glass.get("institution_per_day", 20)
    )
    for key, value, low, high in (
        ("treating_window_days", window, 1, 3650),
        ("break_glass persons_per_day", per_day, 0, 1000),
        ("break_glass hours", hours, 0.01, 168),
        ("break_glass institution_per_day", per_institution, 0, 100000),
    ):
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not low <= value <= high
        ):
            raise PolicyError(f"{key}: {value!r} must be {low}-{high}")
    try:
        grades = parse_grades(raw.get("grades"))
    except GradeError as exc:
        raise PolicyError(str(exc)) from None
    return Policy(
        rules,
        denials,
        floor,
        int(window),
        frozenset(relations.get("national_orgs", [])),
        int(per_day),
        float(hours),
        grades,
        tuple(_assurance(i, a) for i, a in enumerate(raw.get("assurance", []))),
        int(per_institution),
        _audit_scope(raw.get("audit_scope", {})),
        _supervision(raw.get("supervision")),
    )


def _supervision(raw: Any) -> tuple[SupervisionGrant, ...]:
    try:
        return parse_supervision(raw)
    except SupervisionPolicyError as exc:
        raise PolicyError(str(exc)) from None


def _audit_scope(raw: Any) -> AuditScopeRules:
    try:
        return parse_audit_scope(raw)
    except ValueError as exc:
        raise PolicyError(str(exc)) from None


def load(path: Path = POLICY_FILE, overrides: Mapping[str, Any] | None = None) -> Policy:
    with path.open("rb") as fh:
        return parse(tomllib.load(fh), overrides)


@cache
def default_policy() -> Policy:
    return load()
