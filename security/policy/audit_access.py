"""Who may read the audit log: the field policy's answer, not a role written in code.

The audit log's answers (``auditEvents``, ``auditAlerts``, the proofs and the export) are
built whole from the log, never masked field by field, so reading them takes ALLOW for every
field of every type they are made of (``security/catalogue.toml``, class ``audit``), on a row
of the relation the caller has to it: none for an auditor's view of everyone's events, SELF
for a patient's own access log. A MASK or DENY of any one field refuses the whole read (fail
closed). Under the shipped policy this is its auditor rule (role auditor, purpose AUDIT) and
the patients' own-record rule; a policy file that changes those changes who reads the log.
"""

from __future__ import annotations

from security.catalogue import Catalogue
from security.enforcement import Decider, Decision, Relation
from security.identity.principal import Principal
from security.identity.roles import Purpose

AUDIT_TYPES = (
    "AuditEvent",
    "AuditWrite",
    "AuditPrincipal",
    "AuditPerson",
    "AuditField",
    "AuditAlert",
)


def audit_log_refusal(
    principal: Principal,
    purpose: Purpose,
    relation: Relation,
    catalogue: Catalogue,
    decider: Decider,
) -> str | None:
    """Why this caller may not read the audit log on rows of ``relation``; None if it may."""
    for type_name in AUDIT_TYPES:
        entry = catalogue.types.get(type_name)
        if entry is None or not entry.fields:
            return f"{type_name} is not in the data catalogue"
        for field_name in entry.fields:
            decision, why = decider(principal, purpose, type_name, field_name, relation)
            if decision is not Decision.ALLOW:
                return f"{type_name}.{field_name}: {why}"
    return None
