"""Token verification: a compact JWS from a trusted issuer becomes a :class:`Principal`, or
an :class:`AuthenticationError` with a one-line reason.

The key is chosen by the token's (``iss``, ``kid``) among the registered keys, and the
signature is checked only with that key's own algorithm. A header asking for ``none``,
HS256 (which would treat the public key as an HMAC secret), RS256 or anything else is
refused before any cryptography runs. Key-carrying headers (``jwk``, ``jku``, ``x5u``,
``x5c``) are ignored: keys come from the registry only (for an OpenID Connect provider, the
JWKS its configured discovery document names).
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime

import jwt
from jwt import exceptions as jwt_errors

from security.errors import MedfedError
from security.identity import claims
from security.identity.issuers import SUPPORTED_ALGS, IssuerRegistry
from security.identity.principal import Principal
from security.identity.scope import IssuerScope

DEFAULT_LEEWAY_SECONDS = 60
DEFAULT_MAX_LIFETIME_SECONDS = 12 * 3600
MAX_TOKEN_BYTES = 8192
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "role", "org", "purposes")
_COMPACT_JWS_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_JTI_MAX = 128
_YEAR_10000 = 253_402_300_800  # first second after 9999-12-31T23:59:59Z


class AuthenticationError(MedfedError):
    """The token is not acceptable; ``reason`` is one line and never contains the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def verify_token(
    token: str,
    registry: IssuerRegistry,
    *,
    audience: str,
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
    max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_SECONDS,
    now: datetime | float | None = None,
) -> Principal:
    """Verify ``token`` and return who it proves the caller to be."""
    if not isinstance(token, str) or not token:
        raise AuthenticationError("no token")
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthenticationError(f"token is longer than {MAX_TOKEN_BYTES} bytes")
    if not _COMPACT_JWS_RE.match(token):
        raise AuthenticationError("token is not a JWT (expected three base64url parts)")
    header = _unverified_header(token)
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in SUPPORTED_ALGS:
        raise AuthenticationError(
            f"token algorithm {claims.shown(alg)} is not accepted "
            f"(only {' or '.join(SUPPORTED_ALGS)})"
        )
    if not isinstance(kid, str) or not kid:
        raise AuthenticationError("token header has no key id (kid)")

    iss = _unverified_claims(token).get("iss")
    if not isinstance(iss, str) or not iss:
        raise AuthenticationError("token has no issuer (iss)")
    issuer = registry.issuer(iss)
    if issuer is None:
        raise AuthenticationError(f"issuer {claims.shown(iss, 80)} is not trusted")
    key = issuer.key(kid)  # a provider trusted by discovery: its cached JWKS
    if key is None:
        raise AuthenticationError(f"issuer {claims.shown(iss, 80)} has no key {claims.shown(kid)}")
    if alg != key.alg:
        raise AuthenticationError(
            f"token algorithm {alg} does not match key {claims.shown(kid)} ({key.alg})"
        )
    if audience not in issuer.audiences:
        raise AuthenticationError(
            f"issuer {claims.shown(iss, 80)} is not trusted for audience '{audience}'"
        )

    payload = _verified_claims(token, key.public_key, key.alg, audience, iss)
    instant = _timestamp(now)
    expires_at = _check_times(payload, instant, leeway_seconds, max_lifetime_seconds)
    try:
        return _principal(token, payload, iss, expires_at, issuer.scope)
    except claims.ClaimError as exc:
        raise AuthenticationError(str(exc)) from None


def unverified_key_id(token: str) -> tuple[str, str] | None:
    """The (``iss``, ``kid``) a token names, unverified, or None: only to fetch an OpenID
    Connect provider's keys off the event loop before :func:`verify_token` needs them."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
        return None
    try:
        kid = _unverified_header(token).get("kid")
        iss = _unverified_claims(token).get("iss")
    except AuthenticationError:
        return None
    return (iss, kid) if isinstance(iss, str) and isinstance(kid, str) else None


def _unverified_header(token: str) -> dict:
    try:
        header = jwt.get_unverified_header(token)
    except jwt_errors.PyJWTError:
        raise AuthenticationError("token header is malformed") from None
    return header


def _unverified_claims(token: str) -> dict:
    # Read only to pick the issuer's key; nothing here is trusted until the signature checks.
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt_errors.PyJWTError:
        raise AuthenticationError("token payload is malformed") from None
    if not isinstance(payload, dict):
        raise AuthenticationError("token payload is malformed")
    return payload


def _verified_claims(token: str, public_key: object, alg: str, audience: str, iss: str) -> dict:
    try:
        return jwt.decode(
            token,
            public_key,
            # One algorithm, the key's own: never a list that mixes key families.
            algorithms=[alg],
            audience=audience,
            issuer=iss,
            options={
                "require": list(REQUIRED_CLAIMS),
                # Times are checked below against an injectable clock, with lifetime bounds
                # PyJWT does not know about.
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "strict_aud": False,
            },
        )
    except jwt_errors.InvalidSignatureError:
        raise AuthenticationError("token signature does not verify") from None
    except jwt_errors.MissingRequiredClaimError as exc:
        raise AuthenticationError(f"token lacks the '{exc.claim}' claim") from None
    except jwt_errors.InvalidAudienceError:
        raise AuthenticationError(f"token is not for audience '{audience}'") from None
    except jwt_errors.InvalidIssuerError:
        raise AuthenticationError("token issuer is invalid") from None
    except jwt_errors.InvalidSubjectError:
        raise AuthenticationError("claim 'sub' must be a non-empty string") from None
    except jwt_errors.InvalidJTIError:
        raise AuthenticationError("claim 'jti' must be a string") from None
    except jwt_errors.PyJWTError:
        raise AuthenticationError("token is malformed") from None
    except Exception:
        # Anything unexpected from a verification library means "not verified".
        raise AuthenticationError("token could not be verified") from None


def _timestamp(now: datetime | float | None) -> float:
    if now is None:
        return datetime.now(UTC).timestamp()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.timestamp()
    return float(now)


def _numeric_date(payload: dict, claim: str) -> float:
    value = payload.get(claim)
    # bool is an int in Python; NaN, infinities and absurd magnitudes compare or convert in
    # ways that would open the door, so only real calendar times are accepted.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value < _YEAR_10000
    ):
        raise AuthenticationError(f"claim '{claim}' must be a time in seconds since 1970")
    return float(value)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_times(payload: dict, now: float, leeway: int, max_lifetime: int) -> datetime:
    exp, iat = _numeric_date(payload, "exp"), _numeric_date(payload, "iat")
    if exp <= now - leeway:
        raise AuthenticationError(f"token expired at {_iso(exp)}")
    if iat > now + leeway:
        raise AuthenticationError(f"token is issued in the future ({_iso(iat)})")
    nbf = _numeric_date(payload, "nbf") if "nbf" in payload else None
    if nbf is not None and nbf > now + leeway:
        raise AuthenticationError(f"token is not valid before {_iso(nbf)}")
    if exp <= iat:
        raise AuthenticationError("token expires before it was issued")
    if exp - iat > max_lifetime:
        raise AuthenticationError(
            f"token lifetime {_duration(exp - iat)} exceeds the maximum of "
            f"{_duration(max_lifetime)}"
        )
    return datetime.fromtimestamp(exp, UTC)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _principal(
    token: str, payload: dict, iss: str, expires_at: datetime, scope: IssuerScope
) -> Principal:
    sub = claims.check_sub(payload["sub"])
    role = claims.check_role(payload["role"])
    org = claims.check_org(payload["org"])
    purposes = claims.check_purposes(payload["purposes"], role)
    # A signature proves who signed; the scope is what that signer may say. Checked before the
    # claims that depend on the role, so an issuer that may not mint patients hears that.
    scope.check(
        iss,
        role=role,
        org=org,
        purposes=purposes,
        has_person="person" in payload,
        has_professional="professional" in payload,
    )
    person = claims.check_person(role, purposes, payload.get("person"), "person" in payload)
    cert_type, assurance = claims.check_credential(role, payload)
    professional = claims.check_professional(role, payload)
    jti = payload.get("jti")
    # The token id lands in audit logs: keep it short and printable.
    if jti is not None and (
        not isinstance(jti, str) or not 0 < len(jti) <= _JTI_MAX or not jti.isprintable()
    ):
        raise claims.ClaimError("jti", f"must be at most {_JTI_MAX} printable characters")
    token_id = jti or "sha256:" + hashlib.sha256(token.encode("ascii")).hexdigest()[:32]
    return Principal(
        sub=sub,
        role=role,
        org=org,
        issuer=iss,
        purposes=purposes,
        person_ref=person,
        token_id=token_id,
        expires_at=expires_at,
        cert_type=cert_type,
        assurance=assurance,
        professional=professional,
    )
