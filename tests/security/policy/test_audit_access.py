"""Who may read the audit log is the field policy's decision (security.policy.audit_access),
not a role written in the resolvers: under the shipped policy exactly the auditors (purpose
AUDIT) and each patient for their own access log; a policy that lets another role read class
``audit`` lets it read the log, one that takes the auditors' rule away refuses them, and one
that masks the log refuses the whole read (the log is answered whole)."""

from __future__ import annotations

import copy
import itertools
import tomllib
from datetime import UTC, datetime, timedelta

import pytest

from gateway.app import build_services
from security.catalogue import default_catalogue
from security.enforcement import Relation
from security.identity.principal import Principal
from security.identity.roles import Purpose, Role
from security.policy import default_policy, make_decider
from security.policy.audit_access import AUDIT_TYPES, audit_log_refusal
from security.policy.rules import POLICY_FILE, parse
from tests.support.federation import Federation

CATALOGUE = default_catalogue()
EVENTS = "{ auditEvents(first: 5) { nodes { index kind } } }"


def _who(role: Role, purpose: Purpose, org: str = "330000") -> Principal:
    return Principal(
        sub="t",
        role=role,
        org=org,
        issuer="t",
        purposes=frozenset({purpose}),
        person_ref=None,
        token_id="-",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


def _policy(change) -> object:
    raw = tomllib.loads(POLICY_FILE.read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    change(raw)
    return parse(raw)


def _auditor_rule(raw: dict) -> dict:
    (rule,) = [r for r in raw["rules"] if r["roles"] == ["auditor"]]
    return rule


def _admins_too(raw: dict) -> None:
    _auditor_rule(raw)["roles"] = ["auditor", "admin"]


def _no_auditors(raw: dict) -> None:
    raw["rules"].remove(_auditor_rule(raw))


def _mask_for_auditors(raw: dict) -> None:
    # The auditors' rule turned to MASK: a masked log is not answered, the whole read goes.
    rule = _auditor_rule(raw)
    rule["decision"] = "MASK"


def _allowed(policy) -> set[tuple[str, str, str]]:
    decider = make_decider(CATALOGUE, policy)
    return {
        (role.value, purpose.value, relation.value)
        for role, purpose, relation in itertools.product(
            Role, Purpose, (Relation.NONE, Relation.SELF)
        )
        if audit_log_refusal(_who(role, purpose), purpose, relation, CATALOGUE, decider) is None
    }


def test_under_the_shipped_policy_auditors_and_each_patient_for_themself_read_the_log():
    assert _allowed(default_policy()) == {
        ("auditor", "AUDIT", "NONE"),
        ("auditor", "AUDIT", "SELF"),
        ("patient", "PATIENT_ACCESS", "SELF"),
    }


def test_the_policy_decides_who_else_reads_it_and_who_no_longer_does():
    assert ("admin", "AUDIT", "NONE") in _allowed(_policy(_admins_too))
    assert _allowed(_policy(_no_auditors)) == {("patient", "PATIENT_ACCESS", "SELF")}
    assert _allowed(_policy(_mask_for_auditors)) == {("patient", "PATIENT_ACCESS", "SELF")}


def test_a_refusal_names_the_field_and_the_policys_reason():
    decider = make_decider(CATALOGUE, default_policy())
    clinician = _who(Role.CLINICIAN, Purpose.TREATMENT, "H33010600001")
    refused = audit_log_refusal(clinician, Purpose.TREATMENT, Relation.NONE, CATALOGUE, decider)
    assert (
        refused == "AuditEvent.index: no rule lets clinician read audit for TREATMENT on a NONE row"
    )
    masked = make_decider(CATALOGUE, _policy(_mask_for_auditors))
    auditor = _who(Role.AUDITOR, Purpose.AUDIT)
    why = audit_log_refusal(auditor, Purpose.AUDIT, Relation.NONE, CATALOGUE, masked)
    assert why is not None and why.startswith("AuditEvent.index: ")


def test_every_type_of_the_logs_answers_is_catalogued_and_checked():
    for type_name in AUDIT_TYPES:
        assert CATALOGUE.types[type_name].fields, type_name
    # A type missing from the catalogue refuses (nothing unclassified is answered).
    decider = make_decider(CATALOGUE, default_policy())
    empty = type(CATALOGUE)(types={}, public_types=frozenset())
    auditor = _who(Role.AUDITOR, Purpose.AUDIT)
    assert audit_log_refusal(auditor, Purpose.AUDIT, Relation.NONE, CATALOGUE, decider) is None
    refused = audit_log_refusal(auditor, Purpose.AUDIT, Relation.NONE, empty, decider)
    assert refused == "AuditEvent is not in the data catalogue"


@pytest.mark.parametrize(
    ("change", "role", "answered"),
    [
        (None, "auditor", True),  # the positive control
        (None, "admin", False),
        (_admins_too, "admin", True),
        (_no_auditors, "auditor", False),
        (_mask_for_auditors, "auditor", False),
    ],
)
async def test_the_api_and_the_http_endpoints_follow_the_policy(data_dir, change, role, answered):
    fed = await Federation(data_dir).setup(institutions=False)
    services = build_services(fed.settings)
    if change is not None:
        services.policy = _policy(change)
        services._decider = None  # decided afresh from the new policy
    app = fed.app(services)
    async with fed.client(app, fed.token(role, "330000", purposes=["AUDIT"]), "AUDIT") as client:
        body = (await client.post("/graphql", json={"query": EVENTS})).json()
        checkpoint = await client.get("/audit/checkpoint")
    if answered:
        assert "errors" not in body, body
        assert body["data"]["auditEvents"]["nodes"] is not None
        assert checkpoint.status_code == 200 and checkpoint.text.startswith("medfed.local/audit")
    else:
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "the policy does not let you read the audit log (AuditEvent." in error["message"]
        assert checkpoint.status_code == 403
        (refused,) = checkpoint.json()["errors"]  # the one refusal shape of every endpoint
        assert refused["extensions"]["code"] == "FORBIDDEN"
        assert "the policy does not let you read the audit log" in refused["message"]
