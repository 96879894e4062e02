"""The field policy as a pure function: each default the issue names, the floor, fail-closed
behaviour, the catalogue's coverage of the schema, and the generated table in docs/policy.md."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest
from graphql import GraphQLObjectType

from gateway.cli import main as cli_main
from schema.build import build_schema
from schema.mutations import Mutation
from security.catalogue import CatalogueError, default_catalogue
from security.catalogue import parse as parse_catalogue
from security.enforcement import Decision, FieldGuard, Relation
from security.identity.principal import Principal
from security.identity.roles import Purpose, Role
from security.policy import PolicyError, decide, default_policy, make_decider
from security.policy.rules import parse as parse_policy
from security.policy.table import markdown
from tests.support import REPO

CAT = default_catalogue()
POL = default_policy()
POLICY_DOC = REPO / "docs" / "policy.md"

ALLOW, MASK, DENY = Decision.ALLOW, Decision.MASK, Decision.DENY


def who(role: Role, *purposes: Purpose, org: str = "H33010600001") -> Principal:
    return Principal(
        sub="t",
        role=role,
        org=org,
        issuer="t",
        purposes=frozenset(purposes),
        person_ref=None,
        token_id="-",
        expires_at=datetime.now(UTC),
    )


def d(principal: Principal, purpose: Purpose, path: str, relation: Relation) -> Decision:
    type_name, field = path.split(".")
    return decide(principal, purpose, type_name, field, relation, CAT, POL)[0]


def personal_fields(*classes: str) -> list[str]:
    return [f.path for f in CAT.fields() if not classes or f.data_class in classes]


# -- defaults of the issue -----------------------------------------------------------------------
def test_patient_reads_all_of_their_own_record_and_nothing_else():
    # After a real-person check (acr): below it, level 4 is ASSURANCE_TOO_LOW (test_policy_trust).
    patient = dataclasses.replace(
        who(Role.PATIENT, Purpose.PATIENT_ACCESS, org="330106"), assurance="real_person"
    )
    for path in personal_fields():
        assert d(patient, Purpose.PATIENT_ACCESS, path, Relation.SELF) is ALLOW, path
        assert d(patient, Purpose.PATIENT_ACCESS, path, Relation.NONE) is DENY, path


def test_clinician_reads_results_and_visits_of_treated_or_consented_persons():
    doc = who(Role.CLINICIAN, Purpose.TREATMENT)
    for relation in (Relation.TREATING, Relation.CONSENTED):
        for path in personal_fields("visit", "diagnosis", "lab_result", "imaging"):
            assert d(doc, Purpose.TREATMENT, path, relation) is ALLOW, (path, relation)
    for path in personal_fields():
        assert d(doc, Purpose.TREATMENT, path, Relation.NONE) is DENY, path


def test_clinician_sees_identity_masked_beyond_name():
    doc = who(Role.CLINICIAN, Purpose.TREATMENT)
    assert d(doc, Purpose.TREATMENT, "Person.name", Relation.TREATING) is ALLOW
    for path in ("Person.idNumber", "Person.phone", "Person.birthDate", "Person.address"):
        assert d(doc, Purpose.TREATMENT, path, Relation.TREATING) is MASK, path


def test_diagnosis_and_level_four_need_treating_or_consent_for_every_role():
    strong = {Relation.SELF, Relation.TREATING, Relation.CONSENTED, Relation.BREAK_GLASS}
    sensitive = [f.path for f in CAT.fields() if f.level >= 4 or f.data_class == "diagnosis"]
    assert "Visit.diagnosisText" in sensitive and "TestResult.findings" in sensitive
    for role in Role:
        for purpose in Purpose:
            principal = who(role, purpose)
            for relation in set(Relation) - strong:
                for path in sensitive:
                    assert d(principal, purpose, path, relation) is not ALLOW, (
                        role,
                        purpose,
                        relation,
                        path,
                    )


def test_pharmacist_sees_only_prescriptions_circulated_to_it():
    pharmacist = who(Role.PHARMACIST, Purpose.TREATMENT, org="P33010600101")
    for path in personal_fields("prescription"):
        assert d(pharmacist, Purpose.TREATMENT, path, Relation.PHARMACY) is ALLOW, path
        assert d(pharmacist, Purpose.TREATMENT, path, Relation.NONE) is DENY, path
    for path in personal_fields("identity", "visit", "diagnosis", "lab_result", "imaging"):
        for relation in Relation:
            assert d(pharmacist, Purpose.TREATMENT, path, relation) is DENY, (path, relation)


@pytest.mark.parametrize("purpose", [Purpose.SETTLEMENT, Purpose.FUND_SUPERVISION])
def test_agency_reads_settlements_and_filings_of_its_region_not_lab_values(purpose):
    agency = who(Role.INSURANCE_AGENCY, Purpose.SETTLEMENT, Purpose.FUND_SUPERVISION, org="330100")
    for path in personal_fields("settlement", "filing"):
        assert d(agency, purpose, path, Relation.REGION) is ALLOW, path
        assert d(agency, purpose, path, Relation.NONE) is DENY, path
    for path in personal_fields("lab_result", "imaging", "diagnosis"):
        assert d(agency, purpose, path, Relation.REGION) is DENY, path
    assert d(agency, purpose, "Person.idNumber", Relation.REGION) is MASK


def test_settlement_centre_reads_cross_province_money_and_filings_no_clinical_content():
    centre = who(Role.SETTLEMENT_CENTER, Purpose.SETTLEMENT, org="100000")
    for path in personal_fields("settlement", "filing"):
        assert d(centre, Purpose.SETTLEMENT, path, Relation.REGION) is ALLOW, path
    for path in personal_fields(
        "visit", "diagnosis", "prescription", "lab_result", "imaging", "contact", "enrollment"
    ):
        assert d(centre, Purpose.SETTLEMENT, path, Relation.REGION) is DENY, path


@pytest.mark.parametrize(
    "role,purpose",
    [
        (Role.RESEARCHER, Purpose.RESEARCH),
        (Role.COMMERCIAL_INSURER, Purpose.UNDERWRITING),
        (Role.AUDITOR, Purpose.AUDIT),
        (Role.ADMIN, Purpose.AUDIT),
    ],
)
def test_researchers_insurers_and_auditors_never_read_personal_rows(role, purpose):
    principal = who(role, purpose)
    for path in personal_fields(*[c for c in CAT.classes_in_use() if c != "audit"]):
        for relation in Relation:
            assert d(principal, purpose, path, relation) is DENY, (path, relation)


def test_break_glass_is_for_clinicians_with_purpose_emergency_only():
    doc = who(Role.CLINICIAN, Purpose.TREATMENT, Purpose.EMERGENCY)
    assert d(doc, Purpose.EMERGENCY, "Visit.diagnosisText", Relation.BREAK_GLASS) is ALLOW
    assert d(doc, Purpose.EMERGENCY, "Person.idNumber", Relation.BREAK_GLASS) is MASK
    assert d(doc, Purpose.TREATMENT, "Visit.diagnosisText", Relation.BREAK_GLASS) is DENY
    assert d(doc, Purpose.EMERGENCY, "Visit.diagnosisText", Relation.NONE) is DENY


# -- failing closed ------------------------------------------------------------------------------
def test_unknown_fields_and_ungranted_purposes_are_denied():
    patient = who(Role.PATIENT, Purpose.PATIENT_ACCESS)
    assert (
        decide(patient, Purpose.PATIENT_ACCESS, "Person", "shoeSize", Relation.SELF, CAT, POL)[0]
        is DENY
    )
    assert (
        decide(patient, Purpose.PATIENT_ACCESS, "Nope", "name", Relation.SELF, CAT, POL)[0] is DENY
    )
    doc = who(Role.CLINICIAN, Purpose.TREATMENT)
    decision, reason = decide(
        doc, Purpose.EMERGENCY, "Visit", "visitType", Relation.TREATING, CAT, POL
    )
    assert decision is DENY and "not granted" in reason


def test_a_decider_that_raises_denies_and_each_decision_is_made_once():
    calls = []

    def broken(*args):
        calls.append(args)
        raise RuntimeError("policy store down")

    guard = FieldGuard(who(Role.PATIENT, Purpose.PATIENT_ACCESS), Purpose.PATIENT_ACCESS, broken)
    for _ in range(100):
        assert guard.decide("Person", "name", Relation.SELF)[0] is DENY
    assert len(calls) == 1


def test_the_guard_uses_the_real_decider_once_per_field_and_relation():
    seen = []
    real = make_decider(CAT, POL)

    def counting(*args):
        seen.append(args[2:])
        return real(*args)

    guard = FieldGuard(who(Role.CLINICIAN, Purpose.TREATMENT), Purpose.TREATMENT, counting)
    for _ in range(50):
        assert guard.read("Person", "name", Relation.TREATING, "p1", lambda: "张三") == "张三"
        assert (
            guard.read(
                "Person",
                "phone",
                Relation.TREATING,
                "p1",
                lambda: "13812345678",
                lambda v: v[:3] + "****" + v[-4:],
            )
            == "138****5678"
        )
    assert len(seen) == 2
    assert guard.accesses["p1"].read == {"Person.name"}
    assert guard.accesses["p1"].masked == {"Person.phone"}


def test_malformed_policy_and_catalogue_files_are_refused():
    with pytest.raises(PolicyError):
        parse_policy(
            {
                "floor": {"relations": ["SELF"]},
                "rules": [
                    {"roles": ["surgeon"], "purposes": "*", "relations": "*", "decision": "ALLOW"}
                ],
            }
        )
    with pytest.raises(PolicyError):
        parse_policy(
            {
                "floor": {"relations": ["SELF"]},
                "rules": [{"roles": "*", "purposes": "*", "relations": "*", "decision": "MAYBE"}],
            }
        )
    with pytest.raises(CatalogueError):
        parse_catalogue({"types": {"T": {"fields": {"f": {"class": "gossip", "level": 3}}}}})
    with pytest.raises(CatalogueError):
        parse_catalogue({"types": {"T": {"fields": {"f": {"class": "identity", "level": 9}}}}})


# -- the catalogue covers the schema -------------------------------------------------------------
def _object_types():
    schema = build_schema(dev=True, mutation=Mutation)
    return schema, {
        name: t
        for name, t in schema._schema.type_map.items()
        if isinstance(t, GraphQLObjectType) and not name.startswith("__")
    }


def test_every_field_of_every_personal_type_is_catalogued_and_nothing_more():
    _, types = _object_types()
    missing, unknown_types = [], []
    for name, gql_type in types.items():
        if CAT.is_public_type(name):
            continue
        entry = CAT.types.get(name)
        if entry is None:
            unknown_types.append(name)
            continue
        missing += [
            f"{name}.{f}" for f in gql_type.fields if f not in entry.fields and f not in entry.links
        ]
    assert not unknown_types, f"types neither catalogued nor public: {unknown_types}"
    assert not missing, f"fields missing from security/catalogue.toml: {missing}"
    stale = [
        f"{t}.{f}"
        for t, entry in CAT.types.items()
        for f in (*entry.fields, *entry.links)
        if t not in types or f not in types[t].fields
    ]
    assert not stale, f"catalogue names fields the schema lacks: {stale}"


def test_the_sdl_shows_each_fields_class_and_level():
    schema, _ = _object_types()
    sdl = schema.as_str()
    assert re.search(r"National citizen ID number \(身份证号\)\. Class: identity, level 4\.", sdl)
    assert "Diagnosis as written by the doctor (诊断描述). Class: diagnosis, level 4." in sdl
    assert len(re.findall(r"Class: [a-z_]+, level [1-5]\.", sdl)) == sum(
        len(entry.fields) for entry in CAT.types.values()
    )


# -- the table in docs/policy.md ---------------------------------------------------------------
SYNTHETIC_CATALOGUE = """
[types.Card.fields]
holder = { class = "identity", level = 4, mask = "name" }
phone = { class = "identity", level = 4, mask = "phone" }
number = { class = "identity", level = 3 }
note = { class = "visit", level = 2 }
"""
SYNTHETIC_POLICY = """
[floor]
level = 4
classes = []
relations = ["SELF", "TREATING"]

[[rules]]
roles = ["clinician"]
purposes = ["TREATMENT"]
relations = ["TREATING", "REGION"]
classes = "*"
decision = "ALLOW"
"""
# Worked out by hand from the two files above: the clinician reads everything on TREATING
# rows; on REGION rows the floor masks the two level-4 fields and leaves the level-3 one;
# every other role and relation has no rule (DENY). Rows are each role's default purposes.
SYNTHETIC_TABLE = """\
| role | purpose | identity | visit |
|---|---|---|---|
| patient | PATIENT_ACCESS | DENY | DENY |
| clinician | TREATMENT | TREATING: ALLOW · REGION: MASK (ALLOW: number) · otherwise DENY \
| TREATING, REGION: ALLOW · otherwise DENY |
| pharmacist | TREATMENT | DENY | DENY |
| insurance_agency | SETTLEMENT | DENY | DENY |
| insurance_agency | FUND_SUPERVISION | DENY | DENY |
| settlement_center | SETTLEMENT | DENY | DENY |
| researcher | RESEARCH | DENY | DENY |
| commercial_insurer | UNDERWRITING | DENY | DENY |
| auditor | AUDIT | DENY | DENY |
| admin | AUDIT | DENY | DENY |
"""


def test_policy_table_command_prints_the_table_worked_out_by_hand(tmp_path, capsys):
    (tmp_path / "catalogue.toml").write_text(SYNTHETIC_CATALOGUE, encoding="utf-8")
    (tmp_path / "policy.toml").write_text(SYNTHETIC_POLICY, encoding="utf-8")
    args = [
        "--policy",
        str(tmp_path / "policy.toml"),
        "--catalogue",
        str(tmp_path / "catalogue.toml"),
    ]
    assert cli_main(["policy", "table", *args]) == 0
    fields, _, rest = capsys.readouterr().out.partition("\n\n")
    grades, _, trust = rest.partition("\n\n")
    assert trust.startswith("Assurance of the caller's identity")  # policy_trust checks it
    assert fields + "\n" == SYNTHETIC_TABLE
    assert grades.startswith("| role | purpose | statistics |")  # no grades: header only
    assert grades.count("\n") == 1  # (the blank line before the trust tables is cut off)


def _doc_block(name: str) -> str:
    text = POLICY_DOC.read_text(encoding="utf-8")
    block = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert block, f"docs/policy.md lacks the {name} markers"
    return block.group(1)


def test_policy_table_command_prints_the_tables_committed_in_the_docs(capsys):
    """The shipped files against the committed copy (reviewed when it changed), not against
    the function that prints it."""
    assert cli_main(["policy", "table"]) == 0
    out = capsys.readouterr().out
    assert out == (
        _doc_block("policy-table")
        + "\n"
        + _doc_block("grades-table")
        + "\n"
        + _doc_block("trust-table")
    )
    assert "| clinician | EMERGENCY |" in out and "BREAK_GLASS" in out
    assert (
        "| researcher | RESEARCH | DENY | DENY | DENY | DENY | DENY | DENY | DENY | DENY | DENY "
        "| DENY | DENY |"
    ) in out


def test_readme_carries_the_current_policy_table():
    text = POLICY_DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- policy-table:start -->\n(.*?)<!-- policy-table:end -->", text, re.S)
    assert block, "docs/policy.md lacks the policy-table markers"
    assert block.group(1) == markdown(CAT, POL), (
        "docs/policy.md: the policy table is stale; paste `medfed policy table` between the markers"
    )
