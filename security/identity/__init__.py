"""Who is calling: trusted issuers, token verification, roles and purposes of use.

Requests carry ``Authorization: Bearer <JWT>`` signed by an issuer listed in the trusted-issuer
file (Ed25519 or ES256 keys); :func:`verify_token` turns it into a :class:`Principal`.
"""

from security.identity.claims import ClaimError
from security.identity.demo_issuer import (
    DEMO_ISSUER,
    DEMO_KID,
    DemoIssuer,
    DemoIssuerError,
    ensure_demo_issuer,
    open_demo_issuer,
)
from security.identity.issuers import (
    IssuerConfigError,
    IssuerRegistry,
    RegistryFile,
    TrustedIssuer,
    TrustedKey,
)
from security.identity.principal import Principal
from security.identity.roles import DEFAULT_PURPOSES, PATIENT_PURPOSES, Purpose, Role
from security.identity.settings import (
    IdentitySettings,
    load_identity_settings,
)
from security.identity.verify import AuthenticationError, verify_token

__all__ = [
    "DEFAULT_PURPOSES",
    "DEMO_ISSUER",
    "DEMO_KID",
    "PATIENT_PURPOSES",
    "AuthenticationError",
    "ClaimError",
    "DemoIssuer",
    "DemoIssuerError",
    "IdentitySettings",
    "IssuerConfigError",
    "IssuerRegistry",
    "Principal",
    "Purpose",
    "RegistryFile",
    "Role",
    "TrustedIssuer",
    "TrustedKey",
    "ensure_demo_issuer",
    "load_identity_settings",
    "open_demo_issuer",
    "verify_token",
]
