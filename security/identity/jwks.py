"""Keys of an OpenID Connect identity provider, found by its discovery document and read
from its JWKS with PyJWT's :class:`jwt.PyJWKClient`.

An ``[[issuers]]`` entry with ``discovery = "<url>"`` instead of ``[[issuers.keys]]`` trusts
the keys its provider publishes. The discovery document must name the entry's ``iss`` as its
``issuer`` (OpenID Connect Discovery §4.3: otherwise another provider's keys could be
trusted under this name) and a ``jwks_uri`` over HTTPS (plain HTTP only on loopback).

The key set is cached for ``lifespan`` seconds, so a withdrawn key stops working within
that time; a token naming a key id the cache does not hold refreshes it at once (a provider
that rotates is followed without a restart), but at most once per ``min_refresh`` seconds,
so tokens with made-up key ids cannot turn the gateway against its provider. Only Ed25519
(``EdDSA``) and P-256 (``ES256``) signing keys are taken; RSA, HMAC and encryption keys in
the set are ignored. A provider that cannot be reached raises :class:`KeysUnavailable`.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from security.errors import MedfedError

DEFAULT_LIFESPAN_SECONDS = 300.0
DEFAULT_MIN_REFRESH_SECONDS = 10.0
FETCH_TIMEOUT_SECONDS = 5.0
MAX_DOCUMENT_BYTES = 256 * 1024


class KeysUnavailable(MedfedError):
    """The provider's discovery document or key set cannot be had right now (one line)."""


class JwksConfigError(MedfedError, ValueError):
    """A discovery URL medfed will not use."""


@dataclass(frozen=True, slots=True)
class JwksKey:
    kid: str
    alg: str
    public_key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def check_url(url: str, what: str) -> str:
    """HTTPS, or plain HTTP to a loopback address (a provider on the same machine)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return url
    raise JwksConfigError(f"{what} must be an https:// URL (http:// only on loopback)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _signing_keys(jwk_set: jwt.PyJWKSet) -> dict[str, JwksKey]:
    keys: dict[str, JwksKey] = {}
    for jwk in jwk_set.keys:
        kid = jwk.key_id
        if not isinstance(kid, str) or not kid or (jwk.public_key_use or "sig") != "sig":
            continue
        key = jwk.key
        if isinstance(key, ed25519.Ed25519PublicKey):
            alg = "EdDSA"
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            alg = "ES256"
        else:
            continue  # RSA, other curves, symmetric keys: never accepted
        if jwk.algorithm_name != alg:
            continue  # a key published for another algorithm is not used for this one
        keys[kid] = JwksKey(kid=kid, alg=alg, public_key=key)
    return keys


class JwksKeys:
    """The signing keys of one provider, fetched when needed and cached."""

    def __init__(
        self,
        iss: str,
        discovery: str,
        *,
        lifespan: float = DEFAULT_LIFESPAN_SECONDS,
        min_refresh: float = DEFAULT_MIN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.iss = iss
        self.discovery = check_url(discovery, "discovery")
        self.lifespan = lifespan
        self.min_refresh = min_refresh
        self._clock = clock
        self._lock = threading.Lock()
        self._client: jwt.PyJWKClient | None = None
        self._keys: Mapping[str, JwksKey] = {}
        self._fetched = float("-inf")  # the last attempt
        self._good = float("-inf")  # the last answer
        self._failure: str | None = None  # why the last attempt failed, until one succeeds

    def needs_fetch(self, kid: str) -> bool:
        """Whether :meth:`key` would go to the provider for this key id (callers on an
        event loop run it in a thread then)."""
        now = self._clock()
        if now - self._fetched >= self.lifespan:
            return True
        return kid not in self._keys and now - self._fetched >= self.min_refresh

    def key(self, kid: str) -> JwksKey | None:
        with self._lock:
            if self.needs_fetch(kid):
                self._refresh()
            found = self._keys.get(kid)
            if found is None and self._failure is not None:
                # Not "no such key": the provider could not be asked.
                raise KeysUnavailable(self._failure)
            return found

    def _refresh(self) -> None:
        # Counted as a fetch even when it fails: a provider that is down is asked again after
        # min_refresh, not on every request.
        # Keys last read more than `lifespan` ago are dropped when the provider cannot be
        # reached: a withdrawn key must not outlive the cache because the provider is down.
        self._fetched = now = self._clock()
        try:
            client = self._client or self._discover()
            self._keys = _signing_keys(client.get_jwk_set(refresh=True))
            self._client, self._good, self._failure = client, now, None
        except (KeysUnavailable, jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            if now - self._good >= self.lifespan:
                self._keys = {}
            self._failure = (
                str(exc)
                if isinstance(exc, KeysUnavailable)
                else f"the keys of issuer '{self.iss}' cannot be read ({type(exc).__name__})"
            )
            raise KeysUnavailable(self._failure) from None

    def _discover(self) -> jwt.PyJWKClient:
        try:
            answer = httpx.get(self.discovery, timeout=FETCH_TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            raise KeysUnavailable(
                f"the discovery document of issuer '{self.iss}' cannot be fetched "
                f"({type(exc).__name__})"
            ) from None
        if answer.status_code != 200 or len(answer.content) > MAX_DOCUMENT_BYTES:
            raise KeysUnavailable(
                f"the discovery document of issuer '{self.iss}' answered {answer.status_code}"
            )
        try:
            document = answer.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise KeysUnavailable(f"the discovery document of issuer '{self.iss}' is not JSON")
        if document.get("issuer") != self.iss:
            raise KeysUnavailable(
                f"the discovery document at {self.discovery} is for another issuer"
            )
        jwks_uri = document.get("jwks_uri")
        try:
            check_url(jwks_uri if isinstance(jwks_uri, str) else "", "jwks_uri")
        except JwksConfigError as exc:
            raise KeysUnavailable(f"issuer '{self.iss}': {exc}") from None
        return jwt.PyJWKClient(
            jwks_uri,
            cache_keys=False,
            cache_jwk_set=True,
            lifespan=max(1, int(self.lifespan)),
            timeout=int(FETCH_TIMEOUT_SECONDS),
        )
