"""What one trusted issuer may assert: its ``[issuers.scope]`` table in issuers.toml.

A signature proves only who signed; the scope says what that signer is trusted to say.
A hospital's identity provider asserts its own clinicians, never an auditor or another
hospital's staff, and only a patient identity provider (such as the national e-credential
issuer) may assert ``person``, the link that makes a token SELF for a record::

    [issuers.scope]
    roles = ["clinician", "pharmacist"]   # roles it may assert ("*": any)
    orgs = ["H33010600001"]               # organisation codes it may assert, exactly
    regions = ["330100"]                  # and/or every organisation inside these regions
    person = false                        # whether it may assert `person` (patients)
    purposes = ["TREATMENT", "EMERGENCY"] # purposes of use it may grant ("*": any)
    professionals = true                  # whether it may assert `professional` (optional)

``professional`` is the national code of the clinician (D…) or pharmacist (Y…) the token
stands for; it decides whose key signs a prescription, so only an issuer that keeps the
register of its staff (the hospital's or pharmacy's own identity provider) is trusted with
it. Left out, ``professionals`` is false: an issuer is not trusted with a code by default.

A region covers the regions inside it (a province 330000 covers 330100 and 330106) and the
institutions (H, P, R, C codes) located there. Every key is required except ``professionals``
and that one of ``orgs`` and ``regions`` may be left out; mistakes raise
``ValueError("key: problem")`` for the registry to report with the file's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from security.errors import MedfedError
from security.identity.claims import ORG_RE, ClaimError, shown
from security.identity.roles import Purpose, Role

ANY = "*"
KEYS = ("roles", "orgs", "regions", "person", "purposes", "professionals")
_REGION_RE = re.compile(r"^[1-8]\d{5}$")


class ScopeError(MedfedError, ValueError):
    """One key of a scope table is wrong: ``key`` relative to the table, one-line ``problem``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def region_prefix(code: str) -> str:
    """A province (330000) or city (330100) covers every region inside it."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def region_of(org: str) -> str:
    """The six-digit region of an organisation: its own code, or an institution's region."""
    return org[1:7] if org[:1].isalpha() else org


@dataclass(frozen=True, slots=True)
class IssuerScope:
    roles: frozenset[Role]
    orgs: frozenset[str]
    regions: tuple[str, ...]  # region codes as given; matched by their prefixes
    any_org: bool
    person: bool
    purposes: frozenset[Purpose]
    professionals: bool = False

    def covers_org(self, org: str) -> bool:
        if self.any_org or org in self.orgs:
            return True
        region = region_of(org)
        return any(region.startswith(region_prefix(r)) for r in self.regions)

    def check(
        self,
        issuer: str,
        *,
        role: Role,
        org: str,
        purposes: Iterable[Purpose],
        has_person: bool,
        has_professional: bool = False,
    ) -> None:
        """Raise :class:`ClaimError` naming the first claim outside this scope."""

        def outside(claim: str, value: object) -> ClaimError:
            return ClaimError(
                claim, f"{shown(value)} is outside the scope of issuer {shown(issuer, 80)}"
            )

        if role not in self.roles:
            raise outside("role", role.value)
        if not self.covers_org(org):
            raise outside("org", org)
        for purpose in sorted(purposes):
            if purpose not in self.purposes:
                raise outside("purposes", purpose.value)
        if has_person and not self.person:
            raise ClaimError(
                "person",
                f"may not be asserted by issuer {shown(issuer, 80)} (its scope has "
                "person = false: only a patient identity provider may link a token to a person)",
            )
        if has_professional and not self.professionals:
            raise ClaimError(
                "professional",
                f"may not be asserted by issuer {shown(issuer, 80)} (its scope does not have "
                "professionals = true: only an identity provider that registers its staff may "
                "say which doctor or pharmacist a token is)",
            )

    def toml(self) -> str:
        """The scope as the ``[issuers.scope]`` table of a generated issuers file."""

        def strings(values: Iterable[str]) -> str:
            return "[" + ", ".join(f'"{v}"' for v in values) + "]"

        lines = [
            "[issuers.scope]",
            f"roles = {strings(r.value for r in Role if r in self.roles)}",
            f"orgs = {strings([ANY] if self.any_org else sorted(self.orgs))}",
            f"regions = {strings(self.regions)}",
            f"person = {'true' if self.person else 'false'}",
            f"purposes = {strings(p.value for p in Purpose if p in self.purposes)}",
            f"professionals = {'true' if self.professionals else 'false'}",
        ]
        return "\n".join(lines) + "\n"


def _members(key: str, raw: Any, enum: Any, what: str) -> frozenset:
    if raw == ANY:
        return frozenset(enum)
    if not isinstance(raw, list) or not raw:
        raise ScopeError(key, f'must be a non-empty list of {what} or "*"')
    out = set()
    for item in raw:
        try:
            out.add(enum(item))
        except ValueError:
            choices = ", ".join(e.value for e in enum)
            raise ScopeError(key, f"{shown(item)} is not one of {choices}") from None
    return frozenset(out)


def _codes(key: str, raw: Any, pattern: re.Pattern[str], what: str) -> list[str]:
    if not isinstance(raw, list):
        raise ScopeError(key, f"must be a list of {what}")
    for item in raw:
        if not isinstance(item, str) or not pattern.match(item):
            raise ScopeError(key, f"{shown(item)} is not {what}")
    return list(raw)


def parse_scope(raw: object) -> IssuerScope:
    """A scope table, checked key by key. Raises :class:`ScopeError`."""
    if not isinstance(raw, Mapping):
        raise ScopeError("", "must be a table ([issuers.scope])")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ScopeError(unknown[0], f"is not a setting (expected one of {', '.join(KEYS)})")
    for key in ("roles", "person", "purposes"):
        if key not in raw:
            raise ScopeError(key, "is required")
    if "orgs" not in raw and "regions" not in raw:
        raise ScopeError("orgs", "give orgs and/or regions (the organisations it may assert)")
    roles = _members("roles", raw["roles"], Role, "roles")
    purposes = _members("purposes", raw["purposes"], Purpose, "purposes of use")
    orgs_raw = raw.get("orgs", [])
    any_org = orgs_raw == [ANY] or orgs_raw == ANY
    orgs = [] if any_org else _codes("orgs", orgs_raw, ORG_RE, "an organisation code")
    regions = _codes("regions", raw.get("regions", []), _REGION_RE, "a six-digit region code")
    if not (any_org or orgs or regions):
        raise ScopeError("orgs", 'names no organisation (list codes, regions, or "*")')
    person = raw["person"]
    if not isinstance(person, bool):
        raise ScopeError("person", "must be true or false")
    if (Role.PATIENT in roles) != person:
        raise ScopeError(
            "person",
            "must be true exactly when roles include patient (a patient token carries person)",
        )
    professionals = raw.get("professionals", False)
    if not isinstance(professionals, bool):
        raise ScopeError("professionals", "must be true or false")
    if professionals and not roles & {Role.CLINICIAN, Role.PHARMACIST}:
        raise ScopeError(
            "professionals", "is only for an issuer of clinicians or pharmacists (see roles)"
        )
    return IssuerScope(
        roles=roles,
        orgs=frozenset(orgs),
        regions=tuple(regions),
        any_org=any_org,
        person=person,
        purposes=purposes,
        professionals=professionals,
    )
