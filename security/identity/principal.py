"""The verified caller of one request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from security.identity.roles import Purpose, Role


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a verified token.

    Holds no plain identifiers: a patient is linked to their records only through
    ``person_ref``, the federation-wide pseudonym (blind index, the API's ``personId``).
    ``token_id`` is the token's ``jti`` or, if it has none, a digest of the token, so the
    audit log can name the credential without ever storing it.
    """

    sub: str
    role: Role
    org: str
    issuer: str
    purposes: frozenset[Purpose]
    person_ref: str | None
    token_id: str
    expires_at: datetime
    # The patient's credential (``mdtrt_cert_type``: 01 e-credential, 02 ID card, 03 social-
    # security card) and assurance (``acr``, security.identity.assurance); None elsewhere.
    cert_type: str | None = None
    assurance: str | None = None
    # The national code of the doctor or pharmacist this token stands for (``professional``),
    # asserted by an issuer trusted with it; None when the token names no professional.
    professional: str | None = None

    def allows(self, purpose: Purpose) -> bool:
        return purpose in self.purposes

    @property
    def is_patient(self) -> bool:
        return self.role is Role.PATIENT
