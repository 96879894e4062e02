"""Opening grades (分级开放): what each (role, purpose) gets from the statistics and extracts.

The ``[[grades]]`` entries of ``security/policy.toml`` are read here, beside the field rules
and separate from them: personal rows are decided per field (and researchers and commercial
insurers are denied every one by ``[[deny]]``); statistics are a path of their own whose
answers contain no row. The first entry matching (role, purpose, statistic, scope) decides:

``EXACT``       exact aggregates (a bureau or agency for its own region);
``SUPPRESSED``  cells under ``k`` persons suppressed, with complementary suppression;
``DP``          differentially private aggregates (OpenDP) charged to a per-partner budget.

``scope = "REGION"`` entries apply only to a request confined to the caller's region (for
the settlement centre: to the national platform's rows); ``"ALL"`` entries to any request.
A grade may name the statistics and the dimensions it opens (default: all). A DP grade may
carry an ``extract`` table: de-identified extracts for research, the classes they may hold,
and the k-anonymity and l-diversity they must reach. No entry: the statistic is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from security.catalogue import CLASSES
from security.errors import MedfedError
from security.identity.roles import DEFAULT_PURPOSES, Purpose, Role

# Statistic families of the API (the schema checks them against its catalogue at import).
STATISTICS = ("settlement", "filing", "internetCare", "recognition")
PERIODS = ("day", "week", "month", "quarter", "year")
SCOPES = ("REGION", "ALL")
PARTNERS = ("org", "public")
_DIMENSION = re.compile(r"^[A-Z][A-Z_]{1,39}$")
# The suppression pattern is computed over every subset of a SUPPRESSED grade's dimensions of
# one statistic (2^n GROUP BYs at each source), so such a grade opens few of them.
MAX_SUPPRESSED_DIMENSIONS = 4


class GradeError(MedfedError, ValueError):
    """A malformed ``[[grades]]`` entry: the gateway must not start on it."""


class Opening(StrEnum):
    EXACT = "EXACT"
    SUPPRESSED = "SUPPRESSED"
    DP = "DP"


@dataclass(frozen=True, slots=True)
class ExtractGrade:
    classes: frozenset[str]  # catalogue classes an extract may hold
    consented_classes: frozenset[str]  # more, for persons who consented to this research
    k: int  # every quasi-identifier combination holds at least k persons
    l: int  # noqa: E741 - and at least l distinct diagnoses


@dataclass(frozen=True, slots=True)
class Grade:
    roles: frozenset[Role]
    purposes: frozenset[Purpose]
    opening: Opening
    scope: str
    statistics: frozenset[str] | None  # None: every statistic
    dimensions: frozenset[str] | None  # None: every dimension
    why: str
    k: int = 0
    epsilon: float = 0.0  # default ε of one question
    max_epsilon: float = 0.0  # the most one question may spend
    budget: float = 0.0  # ε per period per partner
    period: str = "month"
    partner: str = "org"  # whose budget: the caller's organisation, or one shared "public"
    extract: ExtractGrade | None = None

    def matches(self, role: Role, purpose: Purpose, statistic: str, confined: bool) -> bool:
        if role not in self.roles or purpose not in self.purposes:
            return False
        if self.statistics is not None and statistic.split(".")[0] not in self.statistics:
            return False
        return self.scope == "ALL" or confined

    def allows(self, dimensions: Sequence[str]) -> bool:
        return self.dimensions is None or set(dimensions) <= self.dimensions


def grade_for(
    grades: Sequence[Grade], role: Role, purpose: Purpose, statistic: str, confined: bool
) -> Grade | None:
    return next((g for g in grades if g.matches(role, purpose, statistic, confined)), None)


def _members(where: str, raw: Any, enum: Any) -> frozenset:
    if raw == "*":
        return frozenset(enum)
    if not isinstance(raw, list) or not raw:
        raise GradeError(f'{where}: expected a non-empty list or "*"')
    try:
        return frozenset(enum(v) for v in raw)
    except ValueError as exc:
        raise GradeError(f"{where}: {exc}") from None


def _names(where: str, raw: Any, allowed: Sequence[str] | None, pattern=None) -> frozenset[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
        raise GradeError(f"{where}: expected a non-empty list of names")
    for value in raw:
        if (allowed is not None and value not in allowed) or (
            pattern is not None and not pattern.match(value)
        ):
            choices = f" (one of {', '.join(allowed)})" if allowed else ""
            raise GradeError(f"{where}: unknown name {value!r}{choices}")
    return frozenset(raw)


def _number(where: str, raw: Mapping[str, Any], key: str, low: float, high: float) -> float:
    value = raw.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise GradeError(f"{where}.{key}: {value!r} must be a number {low}-{high}")
    return float(value)


def _extract(where: str, raw: Any) -> ExtractGrade:
    if not isinstance(raw, Mapping):
        raise GradeError(f"{where}: expected a table")
    unknown = set(raw) - {"classes", "consented_classes", "k", "l"}
    if unknown:
        raise GradeError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    classes = _names(f"{where}.classes", raw.get("classes"), CLASSES)
    if "identity" not in classes:
        # An extract's rows are (generalised, pseudonymous) persons: identity is their key.
        raise GradeError(f"{where}.classes: must include identity")
    consented = (
        _names(f"{where}.consented_classes", raw["consented_classes"], CLASSES)
        if "consented_classes" in raw
        else classes
    )
    if not classes <= consented:
        raise GradeError(f"{where}.consented_classes: must include every class of classes")
    return ExtractGrade(
        classes,
        consented,
        int(_number(where, raw, "k", 2, 1000)),
        int(_number(where, raw, "l", 1, 50)),
    )


KEYS = {
    "roles",
    "purposes",
    "grade",
    "scope",
    "statistics",
    "dimensions",
    "why",
    "k",
    "epsilon",
    "max_epsilon",
    "budget",
    "period",
    "partner",
    "extract",
}


def _grade(i: int, raw: Mapping[str, Any]) -> Grade:
    where = f"grades[{i}]"
    unknown = set(raw) - KEYS
    if unknown:
        raise GradeError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    try:
        opening = Opening(raw.get("grade"))
    except ValueError:
        raise GradeError(f"{where}.grade: must be EXACT, SUPPRESSED or DP") from None
    scope = raw.get("scope", "ALL")
    if scope not in SCOPES:
        raise GradeError(f"{where}.scope: must be REGION or ALL")
    statistics = raw.get("statistics", "*")
    dimensions = raw.get("dimensions", "*")
    grade = Grade(
        roles=_members(f"{where}.roles", raw.get("roles"), Role),
        purposes=_members(f"{where}.purposes", raw.get("purposes"), Purpose),
        opening=opening,
        scope=scope,
        statistics=None
        if statistics == "*"
        else _names(f"{where}.statistics", statistics, STATISTICS),
        dimensions=None
        if dimensions == "*"
        else _names(f"{where}.dimensions", dimensions, None, _DIMENSION),
        why=str(raw.get("why") or opening.value.lower()),
    )
    extra: dict[str, Any] = {}
    if opening is Opening.SUPPRESSED:
        extra["k"] = int(_number(where, raw, "k", 2, 1000))
        if grade.dimensions is None:
            # The pattern is computed over every subset of the grade's dimensions of a
            # statistic (at most MAX_SUPPRESSED_DIMENSIONS of them; the schema checks).
            raise GradeError(f"{where}.dimensions: a SUPPRESSED grade names its dimensions")
    elif "k" in raw:
        raise GradeError(f"{where}.k: only a SUPPRESSED grade has k")
    if opening is Opening.DP:
        extra["budget"] = _number(where, raw, "budget", 0.001, 1000)
        extra["max_epsilon"] = _number(where, raw, "max_epsilon", 0.001, extra["budget"])
        extra["epsilon"] = _number(where, raw, "epsilon", 0.001, extra["max_epsilon"])
        extra["period"] = raw.get("period", "month")
        if extra["period"] not in PERIODS:
            raise GradeError(f"{where}.period: must be one of {', '.join(PERIODS)}")
        extra["partner"] = raw.get("partner", "org")
        if extra["partner"] not in PARTNERS:
            raise GradeError(f'{where}.partner: must be "org" or "public"')
        if "extract" in raw:
            extra["extract"] = _extract(f"{where}.extract", raw["extract"])
    else:
        for key in ("epsilon", "max_epsilon", "budget", "period", "partner", "extract"):
            if key in raw:
                raise GradeError(f"{where}.{key}: only a DP grade has {key}")
    return Grade(**{**_fields(grade), **extra})


def _fields(grade: Grade) -> dict[str, Any]:
    return {name: getattr(grade, name) for name in Grade.__slots__}


def parse_grades(raw: Any) -> tuple[Grade, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise GradeError("grades: expected [[grades]] entries")
    return tuple(_grade(i, entry) for i, entry in enumerate(raw))


def markdown(grades: Sequence[Grade]) -> str:
    """The opening grades as the Markdown table of docs/policy.md (generated, so it cannot
    drift from the policy file)."""
    lines = [
        "| role | purpose | statistics | scope | grade | parameters | dimensions |",
        "|---|---|---|---|---|---|---|",
    ]
    for grade in grades:
        if grade.opening is Opening.SUPPRESSED:
            params = f"k = {grade.k}"
        elif grade.opening is Opening.DP:
            params = (
                f"ε {grade.epsilon:g} per question (at most {grade.max_epsilon:g}), budget "
                f"{grade.budget:g} per {grade.period} per "
                f"{'partner' if grade.partner == 'org' else 'all, shared (public)'}"
            )
            if grade.extract is not None:
                e = grade.extract
                params += (
                    f"; extracts: {', '.join(sorted(e.classes))} (consented: "
                    f"{', '.join(sorted(e.consented_classes))}), k = {e.k}, l = {e.l}"
                )
        else:
            params = ""
        for role in Role:
            if role not in grade.roles:
                continue
            for purpose in Purpose:
                if purpose not in grade.purposes or purpose not in DEFAULT_PURPOSES.get(role, ()):
                    continue  # a purpose the role's tokens never carry
                lines.append(
                    f"| {role.value} | {purpose.value} | "
                    f"{', '.join(sorted(grade.statistics)) if grade.statistics else 'all'} | "
                    f"{grade.scope} | {grade.opening.value} | {params} | "
                    f"{', '.join(sorted(grade.dimensions)) if grade.dimensions else 'all'} |"
                )
    return "\n".join(lines) + "\n"
