"""Verified tokens remembered until they expire, so a client that sends the same bearer
token on every request pays for its signature check once.

Only a success is remembered, keyed by the token's exact text (a different byte is a
different token, verified in full), beside the issuer and key it verified with. A hit is
answered only while everything the verification rested on still holds:

* the token has not expired (``exp`` against the clock, with the same leeway);
* the issuer is the very one of the registry now in force: a reloaded issuers file (a key
  withdrawn or rotated, the issuer's scope or audiences changed) is a new registry, so every
  remembered token is verified again against it;
* the key its ``kid`` names now is the key it verified with (an OpenID Connect provider's key
  set changes in place), and the issuer is still trusted for the audience.

Anything else, and any failure, goes through :func:`verify_token` in full, whose refusals are
never remembered. The cache is bounded (oldest entries dropped first) so tokens sent once each
cannot grow it without limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from security.identity.issuers import IssuerRegistry, TrustedIssuer, TrustedKey
from security.identity.principal import Principal
from security.identity.verify import (
    DEFAULT_LEEWAY_SECONDS,
    DEFAULT_MAX_LIFETIME_SECONDS,
    unverified_key_id,
    verify_token,
)

DEFAULT_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    issuer: TrustedIssuer
    kid: str
    key: TrustedKey
    expires: float  # exp, seconds since 1970


class VerifiedTokens:
    """:func:`verify_token` with its successes remembered; one per gateway process."""

    def __init__(
        self,
        *,
        audience: str,
        leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
        max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_SECONDS,
        entries: int = DEFAULT_ENTRIES,
    ) -> None:
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self.max_lifetime_seconds = max_lifetime_seconds
        self.entries = entries
        self._seen: OrderedDict[str, _Verified] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0  # for tests and benchmarks

    def verify(
        self, token: str, registry: IssuerRegistry, *, now: float | None = None
    ) -> Principal:
        """The principal ``token`` proves, as :func:`verify_token` would answer now."""
        instant = datetime.now(UTC).timestamp() if now is None else now
        with self._lock:
            seen = self._seen.get(token) if isinstance(token, str) else None
        if seen is not None and self._still_holds(seen, registry, instant):
            self.hits += 1
            return seen.principal
        self.misses += 1
        if seen is not None:
            with self._lock:
                self._seen.pop(token, None)
        principal = verify_token(
            token,
            registry,
            audience=self.audience,
            leeway_seconds=self.leeway_seconds,
            max_lifetime_seconds=self.max_lifetime_seconds,
            now=instant,
        )
        self._remember(token, principal, registry)
        return principal

    def _still_holds(self, seen: _Verified, registry: IssuerRegistry, now: float) -> bool:
        if seen.expires <= now - self.leeway_seconds:
            return False
        issuer = registry.issuer(seen.principal.issuer)
        if issuer is not seen.issuer or self.audience not in issuer.audiences:
            return False
        if issuer.jwks is not None and issuer.jwks.needs_fetch(seen.kid):
            return False  # the provider's keys are due to be read again: the full path
        key = issuer.key(seen.kid)
        return key is not None and (key is seen.key or key == seen.key)

    def _remember(self, token: str, principal: Principal, registry: IssuerRegistry) -> None:
        named = unverified_key_id(token)  # verified just now: these are the signed values
        if named is None or named[0] != principal.issuer:
            return
        issuer = registry.issuer(named[0])
        key = None if issuer is None else issuer.key(named[1])
        if issuer is None or key is None:
            return
        entry = _Verified(principal, issuer, named[1], key, principal.expires_at.timestamp())
        with self._lock:
            self._seen[token] = entry
            self._seen.move_to_end(token)
            while len(self._seen) > self.entries:
                self._seen.popitem(last=False)
