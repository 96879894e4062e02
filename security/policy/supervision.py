"""Who sees fund supervision (``[[supervision]]`` in ``security/policy.toml``).

Each entry opens some views to some (role, purpose) pairs within a scope::

    [[supervision]]
    roles = ["insurance_agency"]
    purposes = ["FUND_SUPERVISION"]
    views = ["spending", "rules", "institutions", "warnings", "credit", "handle"]
    scope = "REGION"        # the caller's own region; ALL: every region
    why = "an agency supervises the fund of its own region"

Views: ``spending`` (fund spending against budget), ``rules`` (rules hit), ``institutions``
(warning rates), ``warnings`` (list them), ``handle`` (assign, acknowledge, close),
``credit`` (credit records), ``clearings`` (the monthly clearing between provinces). A caller
whose organisation is a national body (``relations.national_orgs``) sees every region under
a REGION entry. The first matching entry decides; none: refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from security.errors import MedfedError
from security.identity.roles import Purpose, Role

VIEWS = ("spending", "rules", "institutions", "warnings", "handle", "credit", "clearings")
SCOPES = ("REGION", "ALL")


class SupervisionPolicyError(MedfedError, ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SupervisionGrant:
    roles: frozenset[Role]
    purposes: frozenset[Purpose]
    views: frozenset[str]
    scope: str
    why: str


def region_prefix(org: str) -> str | None:
    """The code prefix a region organisation covers (330000 -> 33, 330100 -> 3301), or None
    when ``org`` is not a six-digit region code."""
    if len(org) != 6 or not org.isdigit():
        return None
    if org.endswith("0000"):
        return org[:2]
    if org.endswith("00"):
        return org[:4]
    return org


def scope_for(
    grants: tuple[SupervisionGrant, ...],
    role: Role,
    purpose: Purpose,
    view: str,
    org: str,
    national_orgs: frozenset[str],
) -> str | None:
    """The region prefix the caller may see ("" for every region), or None: refused."""
    for grant in grants:
        if role in grant.roles and purpose in grant.purposes and view in grant.views:
            if grant.scope == "ALL" or org in national_orgs:
                return ""
            return region_prefix(org)
    return None


def _members(where: str, raw: Any, enum: Any) -> frozenset:
    if not isinstance(raw, list) or not raw:
        raise SupervisionPolicyError(f"{where}: expected a non-empty list")
    try:
        return frozenset(enum(v) for v in raw)
    except ValueError as exc:
        raise SupervisionPolicyError(f"{where}: {exc}") from None


def _grant(i: int, raw: Mapping[str, Any]) -> SupervisionGrant:
    where = f"supervision[{i}]"
    if not isinstance(raw, dict):
        raise SupervisionPolicyError(f"{where}: must be a table")
    for key in raw:
        if key not in ("roles", "purposes", "views", "scope", "why"):
            raise SupervisionPolicyError(f"{where}.{key}: is not a supervision setting")
    views = raw.get("views")
    if not isinstance(views, list) or not views or any(v not in VIEWS for v in views):
        raise SupervisionPolicyError(f"{where}.views: must be a list of {', '.join(VIEWS)}")
    if raw.get("scope") not in SCOPES:
        raise SupervisionPolicyError(f"{where}.scope: must be REGION or ALL")
    return SupervisionGrant(
        _members(f"{where}.roles", raw.get("roles"), Role),
        _members(f"{where}.purposes", raw.get("purposes"), Purpose),
        frozenset(views),
        raw["scope"],
        str(raw.get("why") or "fund supervision"),
    )


def parse_supervision(raw: Any) -> tuple[SupervisionGrant, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SupervisionPolicyError("supervision: must be an array of tables ([[supervision]])")
    return tuple(_grant(i, g) for i, g in enumerate(raw))
