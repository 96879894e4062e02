"""Checks on the medfed-specific claims, shared by verification and by minting, so the demo
issuer can never produce a token the gateway would refuse."""

from __future__ import annotations

import re

from security.errors import MedfedError
from security.identity.assurance import Assurance, CertType
from security.identity.roles import NO_PURPOSE_ROLES, PATIENT_PURPOSES, Purpose, Role

# H (hospital), P (pharmacy), R (research institute) or C (commercial insurer) + six-digit
# GB/T 2260 region + five-digit serial; or a bare region code for bureaus, settlement
# centres and other regional bodies.
ORG_RE = re.compile(r"^(?:[HPRC][1-8]\d{10}|[1-8]\d{5})$")
PERSON_REF_RE = re.compile(r"^[0-9a-f]{32}$")
# National professional codes: a doctor's (医师代码) D…, a pharmacist's (药师代码) Y…, each
# followed by 8-15 of 0-9 A-Z. The role decides which letter a token's `professional` takes.
PROFESSIONAL_RE = {
    Role.CLINICIAN: re.compile(r"^D[0-9A-Z]{8,15}$"),
    Role.PHARMACIST: re.compile(r"^Y[0-9A-Z]{8,15}$"),
}
# A citizen ID number (GB 11643): never acceptable as a subject, which ends up in audit logs.
_ID_NUMBER_RE = re.compile(r"^\d{17}[\dXx]$")
_SUB_MAX = 128


class ClaimError(MedfedError, ValueError):
    """One claim is missing or unacceptable; ``str()`` is a one-line reason."""

    def __init__(self, claim: str, problem: str) -> None:
        super().__init__(f"claim '{claim}' {problem}")
        self.claim = claim
        self.problem = problem


def shown(value: object, limit: int = 40) -> str:
    """A short, printable, ASCII rendering of an untrusted value for an error message."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(ch if " " <= ch <= "~" and ch not in "\"\\'" else "?" for ch in text)
    return f"'{text[:limit]}…'" if len(text) > limit else f"'{text}'"


def check_sub(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ClaimError("sub", "must be a non-empty string")
    if len(value) > _SUB_MAX or any(not ch.isprintable() for ch in value):
        raise ClaimError("sub", f"must be at most {_SUB_MAX} printable characters")
    if _ID_NUMBER_RE.match(value):
        raise ClaimError("sub", "looks like a citizen ID number; subjects must be pseudonyms")
    return value


def check_role(value: object) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ClaimError(
            "role", f"{shown(value)} is not one of {', '.join(r.value for r in Role)}"
        ) from None


def check_org(value: object) -> str:
    if not isinstance(value, str) or not ORG_RE.match(value):
        raise ClaimError(
            "org",
            f"{shown(value)} is neither an institution code (H, P, R or C + six-digit region "
            "+ five digits) nor a six-digit region code",
        )
    return value


def check_purposes(value: object, role: Role | None = None) -> frozenset[Purpose]:
    # A bare string is refused rather than split: "TREATMENT" must not become {T, R, E, ...}.
    if not isinstance(value, list | tuple | set | frozenset):
        raise ClaimError("purposes", "must be a list of purposes of use")
    items = list(value)
    if role in NO_PURPOSE_ROLES:
        # An operations token reads metrics, never data: a purpose would open the data
        # routes' door to it.
        if items:
            raise ClaimError(
                "purposes", f"must be empty in a {role.value} token (it reads no data)"
            )
        return frozenset()
    if not items:
        raise ClaimError("purposes", "must name at least one purpose of use")
    purposes: set[Purpose] = set()
    for item in items:
        try:
            purposes.add(Purpose(item))
        except ValueError:
            raise ClaimError(
                "purposes", f"{shown(item)} is not one of {', '.join(p.value for p in Purpose)}"
            ) from None
    return frozenset(purposes)


def check_person(
    role: Role, purposes: frozenset[Purpose], person: object, has_person: bool
) -> str | None:
    """The patient link: required for patients (with PATIENT_ACCESS only), absent otherwise."""
    if role is not Role.PATIENT:
        if has_person:
            raise ClaimError("person", f"is only for patient tokens, not {role.value}")
        return None
    if not has_person:
        raise ClaimError("person", "is required in a patient token (the personId pseudonym)")
    if not isinstance(person, str) or not PERSON_REF_RE.match(person):
        raise ClaimError("person", "must be a personId pseudonym (32 lowercase hex characters)")
    if purposes != PATIENT_PURPOSES:
        raise ClaimError("purposes", "of a patient token may only be PATIENT_ACCESS")
    return person


def check_credential(role: Role, payload: dict) -> tuple[str | None, str | None]:
    """(``mdtrt_cert_type``, ``acr``): both required in a patient token, the credential type
    only there; any ``acr`` must be one of medfed's assurance levels."""
    has_type, has_acr = "mdtrt_cert_type" in payload, "acr" in payload
    cert_type, acr = payload.get("mdtrt_cert_type"), payload.get("acr")
    if role is Role.PATIENT:
        if not has_type:
            raise ClaimError("mdtrt_cert_type", "is required in a patient token (01, 02 or 03)")
        if not has_acr:
            raise ClaimError(
                "acr", f"is required in a patient token ({', '.join(a.value for a in Assurance)})"
            )
    elif has_type:
        raise ClaimError("mdtrt_cert_type", f"is only for patient tokens, not {role.value}")
    if has_type:
        try:
            cert_type = CertType(cert_type).value
        except ValueError:
            raise ClaimError(
                "mdtrt_cert_type",
                f"{shown(cert_type)} is not 01 (e-credential), 02 (ID card) or 03 "
                "(social-security card)",
            ) from None
    if has_acr:
        try:
            acr = Assurance(acr).value
        except ValueError:
            raise ClaimError(
                "acr", f"{shown(acr)} is not one of {', '.join(a.value for a in Assurance)}"
            ) from None
    return cert_type, acr


def check_professional(role: Role, payload: dict) -> str | None:
    """The ``professional`` claim: the national code of the doctor (clinicians, D…) or the
    pharmacist (pharmacists, Y…) the token stands for; optional for them, absent elsewhere."""
    if "professional" not in payload:
        return None
    value = payload["professional"]
    pattern = PROFESSIONAL_RE.get(role)
    if pattern is None:
        raise ClaimError(
            "professional", f"is only for clinician and pharmacist tokens, not {role.value}"
        )
    if not isinstance(value, str) or not pattern.match(value):
        letter, who = ("D", "doctor") if role is Role.CLINICIAN else ("Y", "pharmacist")
        raise ClaimError(
            "professional", f"{shown(value)} is not a {who} code ({letter} and 8-15 of 0-9 A-Z)"
        )
    return value
