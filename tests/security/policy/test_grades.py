"""Opening grades in the policy file: parsed strictly, matched first-wins, shown in the table."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from connectors.statistics.catalogue import STATISTICS
from security.identity.roles import Purpose, Role
from security.policy import PolicyError
from security.policy.grades import MAX_SUPPRESSED_DIMENSIONS, Opening, grade_for, markdown
from security.policy.rules import POLICY_FILE, default_policy, parse

POLICY_DOC = Path(__file__).resolve().parents[3] / "docs" / "policy.md"
RAW = tomllib.loads(POLICY_FILE.read_text(encoding="utf-8"))
GRADES = default_policy().grades


def _with(entry: dict) -> dict:
    return {**RAW, "grades": [entry]}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"roles": ["researcher"], "purposes": ["RESEARCH"], "grade": "LOOSE"}, "grade: must be"),
        ({"roles": ["nobody"], "purposes": ["RESEARCH"], "grade": "EXACT"}, "roles"),
        (
            {
                "roles": ["researcher"],
                "purposes": ["RESEARCH"],
                "grade": "SUPPRESSED",
                "k": 1,
                "dimensions": ["MONTH"],
            },
            "k",
        ),
        (
            {"roles": ["researcher"], "purposes": ["RESEARCH"], "grade": "SUPPRESSED", "k": 5},
            "names its dimensions",
        ),
        (
            {
                "roles": ["researcher"],
                "purposes": ["RESEARCH"],
                "grade": "DP",
                "budget": 1,
                "max_epsilon": 2,
                "epsilon": 1,
            },
            "max_epsilon",
        ),
        (
            {"roles": ["researcher"], "purposes": ["RESEARCH"], "grade": "EXACT", "budget": 1},
            "only a DP grade",
        ),
        (
            {
                "roles": ["researcher"],
                "purposes": ["RESEARCH"],
                "grade": "EXACT",
                "statistics": ["weather"],
            },
            "unknown name",
        ),
        (
            {
                "roles": ["researcher"],
                "purposes": ["RESEARCH"],
                "grade": "DP",
                "budget": 1,
                "max_epsilon": 1,
                "epsilon": 1,
                "extract": {"classes": ["identity"], "k": 1, "l": 1},
            },
            "extract.k",
        ),
        ({"roles": ["researcher"], "purposes": ["RESEARCH"], "grade": "EXACT", "x": 1}, "unknown"),
        (
            {
                "roles": ["researcher"],
                "purposes": ["RESEARCH"],
                "grade": "DP",
                "budget": 1,
                "max_epsilon": 1,
                "epsilon": 1,
                "extract": {"classes": ["visit"], "k": 5, "l": 1},
            },
            "must include identity",
        ),
    ],
)
def test_malformed_grades_are_refused(entry, message):
    with pytest.raises(PolicyError, match=message):
        parse(_with(entry))


def test_the_first_matching_grade_decides_and_region_scope_needs_a_confined_request():
    agency, purpose = Role.INSURANCE_AGENCY, Purpose.SETTLEMENT
    own = grade_for(GRADES, agency, purpose, "settlement", confined=True)
    other = grade_for(GRADES, agency, purpose, "settlement", confined=False)
    assert own.opening is Opening.EXACT and own.scope == "REGION"
    assert other.opening is Opening.SUPPRESSED and other.k == 10
    research = grade_for(GRADES, Role.RESEARCHER, Purpose.RESEARCH, "recognition", False)
    assert research.opening is Opening.DP and research.extract is not None
    # Statistics not named by a grade, and roles without one, get nothing.
    assert (
        grade_for(GRADES, Role.COMMERCIAL_INSURER, Purpose.UNDERWRITING, "recognition", False)
        is None
    )
    assert grade_for(GRADES, Role.AUDITOR, Purpose.AUDIT, "settlement", False) is None
    assert grade_for(GRADES, Role.ADMIN, Purpose.AUDIT, "settlement", True) is None


def test_the_personal_row_denials_stay_for_researchers_and_insurers():
    denied = {role for d in default_policy().denials for role in d.roles if not d.except_classes}
    assert {Role.RESEARCHER, Role.COMMERCIAL_INSURER} <= denied


def test_shipped_grades_name_known_dimensions_and_few_enough_to_suppress():
    every = {d for s in STATISTICS.values() for d in s.dimensions}
    for grade in GRADES:
        assert grade.dimensions is None or grade.dimensions <= every, grade.why
        if grade.opening is Opening.SUPPRESSED:
            for stat in STATISTICS.values():
                opened = set(stat.dimensions) & grade.dimensions
                assert len(opened) <= MAX_SUPPRESSED_DIMENSIONS, (grade.why, stat.name)


def test_docs_carry_the_current_grades_table():
    text = POLICY_DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- grades-table:start -->\n(.*?)<!-- grades-table:end -->", text, re.S)
    assert block, "docs/policy.md lacks the grades-table markers"
    assert block.group(1) == markdown(GRADES), "docs/policy.md: the grades table is stale"
