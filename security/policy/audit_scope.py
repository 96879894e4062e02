"""Which audit events an auditor sees (``[audit_scope]`` in the policy file).

An event's *parties* are the organisation of the caller (the actor) and the organisations
holding the sources the request asked (the data holders: a hospital, a bureau's province,
the national platform). What an auditor sees follows from what its own organisation is::

    [audit_scope]
    institution = "parties"   # an auditor of an institution (H…, P…, R…, C…)
    region = "region"         # an auditor of a region (a six-digit code)
    national = "all"          # an auditor of a national body (relations.national_orgs)

with one of ``all`` (every event), ``region`` (an event with a party inside the auditor's
region: a province covers its cities and their institutions), ``parties`` (an event in which
the auditor's own organisation is the actor or a data holder) or ``none``. The gateway's
audit API applies it in SQL; :meth:`AuditScope.covers` says the same for one event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from security.identity.scope import region_of, region_prefix

KINDS = ("institution", "region", "national")


class Sight(StrEnum):
    ALL = "all"
    REGION = "region"
    PARTIES = "parties"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class AuditScope:
    """One auditor's scope: ``sight`` with its organisation ``org`` (and region prefix)."""

    sight: Sight
    org: str
    prefix: str

    def covers(self, parties: Iterable[str]) -> bool:
        """Whether an event with these party organisations is in this auditor's scope."""
        if self.sight is Sight.ALL:
            return True
        if self.sight is Sight.PARTIES:
            return self.org in parties
        if self.sight is Sight.REGION:
            return any(region_of(p).startswith(self.prefix) for p in parties)
        return False

    def describe(self) -> str:
        return {
            Sight.ALL: "every event",
            Sight.REGION: f"events with a party in region {self.org}",
            Sight.PARTIES: f"events in which {self.org} is the actor or a data holder",
            Sight.NONE: "no event",
        }[self.sight]


SIGHT_TEXT = {
    Sight.ALL: "every event",
    Sight.REGION: "events with a party (actor or data holder) inside its region",
    Sight.PARTIES: "events in which its organisation is the actor or a data holder",
    Sight.NONE: "no event",
}
KIND_TEXT = {
    "institution": "an institution (H…, P…, R…, C…)",
    "region": "a region (six-digit code)",
    "national": "a national body (relations.national_orgs)",
}


@dataclass(frozen=True, slots=True)
class AuditScopeRules:
    institution: Sight = Sight.PARTIES
    region: Sight = Sight.REGION
    national: Sight = Sight.ALL

    def for_org(self, org: str, national_orgs: frozenset[str]) -> AuditScope:
        """The scope of an auditor of ``org``; an organisation of no known kind sees nothing."""
        if org in national_orgs:
            return AuditScope(self.national, org, "")
        if org[:1].isalpha():
            return AuditScope(self.institution, org, region_prefix(region_of(org)))
        if org.isdigit() and len(org) == 6:
            return AuditScope(self.region, org, region_prefix(org))
        return AuditScope(Sight.NONE, org, "")

    def rows(self) -> list[tuple[str, str]]:
        """(kind of auditor, what it sees) for the policy table."""
        return [(KIND_TEXT[k], SIGHT_TEXT[getattr(self, k)]) for k in KINDS]


def parse_audit_scope(raw: Any) -> AuditScopeRules:
    """The ``[audit_scope]`` table; raises ``ValueError("audit_scope.key: problem")``."""
    if not isinstance(raw, Mapping):
        raise ValueError("audit_scope: must be a table")
    unknown = sorted(set(raw) - set(KINDS))
    if unknown:
        raise ValueError(
            f"audit_scope.{unknown[0]}: is not a setting (expected one of {', '.join(KINDS)})"
        )
    values: dict[str, Sight] = {}
    for kind in KINDS:
        if kind in raw:
            try:
                values[kind] = Sight(raw[kind])
            except ValueError:
                choices = ", ".join(s.value for s in Sight)
                raise ValueError(
                    f"audit_scope.{kind}: {raw[kind]!r} is not one of {choices}"
                ) from None
    return AuditScopeRules(**values)


def parties_of(event: Mapping[str, Any]) -> list[str]:
    """An event's party organisations: the actor's, then the data holders'."""
    principal = event.get("principal") or {}
    out = [principal["org"]] if principal.get("org") else []
    return out + [h for h in event.get("holders") or () if h not in out]
