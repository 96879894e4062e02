"""The trusted-issuer registry: which issuers may sign tokens, for which audiences, with
which public keys. Loaded from a TOML file::

    [[issuers]]
    iss = "https://demo-issuer.medfed.local"
    audiences = ["medfed"]

    [[issuers.keys]]
    kid = "demo-1"
    alg = "EdDSA"                 # Ed25519; or "ES256" (ECDSA P-256)
    public_key = \"\"\"-----BEGIN PUBLIC KEY----- ...\"\"\"   # or public_key_file = "x.pem"

    [issuers.scope]               # what it may assert (security.identity.scope)
    roles = ["clinician"]
    orgs = ["H33010600001"]
    person = false
    purposes = ["TREATMENT"]

An OpenID Connect provider is trusted by its discovery document instead of listed keys
(``discovery = "https://idp.example/.well-known/openid-configuration"``, no
``[[issuers.keys]]``): its JWKS is read and cached by :mod:`security.identity.jwks`.

Every problem raises :class:`IssuerConfigError` naming the offending key, e.g.
``issuers[0].keys[1].alg``.
"""

from __future__ import annotations

import os
import stat
import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from security.errors import MedfedError
from security.identity.jwks import JwksConfigError, JwksKeys
from security.identity.scope import IssuerScope, ScopeError, parse_scope

# Exactly one algorithm per key type. HMAC, RSA and "none" are absent on purpose: a key is
# only ever used with the algorithm it is registered for.
SUPPORTED_ALGS = ("EdDSA", "ES256")
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


class IssuerConfigError(MedfedError, ValueError):
    """A trusted-issuers file that is missing, unsafe or wrong; one line naming the key."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class TrustedKey:
    kid: str
    alg: str
    public_key: PublicKey


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    iss: str
    audiences: frozenset[str]
    keys: Mapping[str, TrustedKey]
    scope: IssuerScope
    jwks: JwksKeys | None = None  # an OpenID Connect provider's published keys

    def key(self, kid: str) -> TrustedKey | None:
        """The key ``kid`` of this issuer; for a provider trusted by discovery this may fetch
        its key set (see :meth:`JwksKeys.needs_fetch`) and raise ``KeysUnavailable``."""
        if self.jwks is None:
            return self.keys.get(kid)
        found = self.jwks.key(kid)
        return None if found is None else TrustedKey(found.kid, found.alg, found.public_key)


@dataclass(frozen=True, slots=True)
class IssuerRegistry:
    issuers: Mapping[str, TrustedIssuer]

    def issuer(self, iss: str) -> TrustedIssuer | None:
        return self.issuers.get(iss)

    def key_for(self, iss: str, kid: str) -> TrustedKey | None:
        issuer = self.issuers.get(iss)
        return None if issuer is None else issuer.key(kid)

    @classmethod
    def load(cls, path: Path | str) -> IssuerRegistry:
        path = Path(path)
        _check_not_writable_by_others(path, str(path), "")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise IssuerConfigError(str(path), "", f"cannot be read ({exc.strerror})") from None
        return cls.from_toml(text, source=str(path), base_dir=path.parent)

    @classmethod
    def from_toml(
        cls, text: str, *, source: str = "issuers", base_dir: Path | None = None
    ) -> IssuerRegistry:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise IssuerConfigError(source, "", f"is not valid TOML ({exc})") from None
        return _parse(raw, source, base_dir or Path.cwd())


class RegistryFile:
    """A registry factory over a file: calling it returns the registry, re-read when the file
    changes, so keys can be added or withdrawn without a restart. The file is stat'ed at most
    every ``min_interval`` seconds (a replaced ``public_key_file`` is seen once the issuers
    file itself is touched). A file that turns bad raises on every call instead of
    falling back to the previous contents: a withdrawn key must never keep working by
    accident."""

    def __init__(self, path: Path | str, *, min_interval: float = 1.0) -> None:
        self.path = Path(path)
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._loaded: IssuerRegistry | None = None  # what calls get until the next check
        self._previous: IssuerRegistry | None = None  # the last good parse of self._stamp
        self._stamp: tuple[int, ...] | None = None
        self._checked = float("-inf")

    def __call__(self) -> IssuerRegistry:
        with self._lock:
            now = time.monotonic()
            if self._loaded is not None and now - self._checked < self._min_interval:
                return self._loaded
            stamp, self._loaded = self._stamp, None  # stays None if anything fails
            try:
                st = self.path.stat()
            except FileNotFoundError:
                raise IssuerConfigError(str(self.path), "", "does not exist") from None
            except OSError as exc:
                raise IssuerConfigError(
                    str(self.path), "", f"cannot be read ({exc.strerror})"
                ) from None
            self._stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
            if self._stamp != stamp or self._previous is None:
                self._previous = None
                self._previous = IssuerRegistry.load(self.path)
            self._loaded, self._checked = self._previous, now
            return self._loaded


# -- parsing --------------------------------------------------------------------------------


def _check_not_writable_by_others(path: Path, source: str, key: str) -> None:
    # Whoever can write this file decides who may sign tokens: refuse group/world-writable.
    # `key` is empty for the issuers file itself, whose path already leads the message.
    named = f"{path} " if key else ""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise IssuerConfigError(source, key, f"{named}does not exist") from None
    except OSError as exc:
        raise IssuerConfigError(source, key, f"{named}cannot be read ({exc.strerror})") from None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise IssuerConfigError(
            source,
            key,
            f"{named}is writable by others (mode {stat.S_IMODE(mode):o}); run: chmod 644 {path}",
        )


def _string(source: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise IssuerConfigError(source, key, "must be a non-empty string")
    return value


def _table_keys(source: str, key: str, table: dict, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise IssuerConfigError(
            source,
            f"{key}.{unknown[0]}" if key else unknown[0],
            f"is not a setting (expected one of {', '.join(sorted(allowed))})",
        )


def _parse(raw: dict, source: str, base_dir: Path) -> IssuerRegistry:
    _table_keys(source, "", raw, {"issuers"})
    entries = raw.get("issuers")
    if not isinstance(entries, list) or not entries:
        raise IssuerConfigError(source, "issuers", "must list at least one [[issuers]] table")
    issuers: dict[str, TrustedIssuer] = {}
    for i, entry in enumerate(entries):
        issuer = _issuer(source, f"issuers[{i}]", entry, base_dir)
        if issuer.iss in issuers:
            raise IssuerConfigError(source, f"issuers[{i}].iss", f"'{issuer.iss}' is listed twice")
        issuers[issuer.iss] = issuer
    return IssuerRegistry(MappingProxyType(issuers))


def _issuer(source: str, key: str, entry: object, base_dir: Path) -> TrustedIssuer:
    if not isinstance(entry, dict):
        raise IssuerConfigError(source, key, "must be a table")
    _table_keys(source, key, entry, {"iss", "audiences", "keys", "discovery", "scope"})
    iss = _string(source, f"{key}.iss", entry.get("iss"))
    audiences = entry.get("audiences")
    if (
        not isinstance(audiences, list)
        or not audiences
        or not all(isinstance(a, str) and a.strip() for a in audiences)
    ):
        raise IssuerConfigError(
            source, f"{key}.audiences", "must be a non-empty list of audience names"
        )
    jwks = None
    if "discovery" in entry:
        if "keys" in entry:
            raise IssuerConfigError(
                source, f"{key}.discovery", "give either discovery or [[issuers.keys]], not both"
            )
        try:
            jwks = JwksKeys(iss, _string(source, f"{key}.discovery", entry["discovery"]))
        except JwksConfigError as exc:
            raise IssuerConfigError(source, f"{key}.discovery", str(exc)) from None
    raw_keys = entry.get("keys", [] if jwks else None)
    if jwks is None and (not isinstance(raw_keys, list) or not raw_keys):
        raise IssuerConfigError(
            source,
            f"{key}.keys",
            "must list at least one [[issuers.keys]] (or give the provider's discovery URL)",
        )
    keys: dict[str, TrustedKey] = {}
    for j, raw_key in enumerate(raw_keys):
        trusted = _key(source, f"{key}.keys[{j}]", raw_key, base_dir)
        if trusted.kid in keys:
            raise IssuerConfigError(
                source, f"{key}.keys[{j}].kid", f"'{trusted.kid}' is listed twice for {iss}"
            )
        keys[trusted.kid] = trusted
    if "scope" not in entry:
        raise IssuerConfigError(
            source,
            f"{key}.scope",
            "is required: what this issuer may assert (roles, orgs and/or regions, person, "
            "purposes; see docs/identity.md)",
        )
    try:
        scope = parse_scope(entry["scope"])
    except ScopeError as exc:
        where = f"{key}.scope.{exc.key}" if exc.key else f"{key}.scope"
        raise IssuerConfigError(source, where, exc.problem) from None
    return TrustedIssuer(
        iss=iss,
        audiences=frozenset(audiences),
        keys=MappingProxyType(keys),
        scope=scope,
        jwks=jwks,
    )


def _key(source: str, key: str, entry: object, base_dir: Path) -> TrustedKey:
    if not isinstance(entry, dict):
        raise IssuerConfigError(source, key, "must be a table")
    _table_keys(source, key, entry, {"kid", "alg", "public_key", "public_key_file"})
    kid = _string(source, f"{key}.kid", entry.get("kid"))
    alg = entry.get("alg")
    if alg not in SUPPORTED_ALGS:
        raise IssuerConfigError(
            source, f"{key}.alg", f"'{alg}' is not supported (use {' or '.join(SUPPORTED_ALGS)})"
        )
    has_inline, has_file = "public_key" in entry, "public_key_file" in entry
    if has_inline == has_file:
        raise IssuerConfigError(
            source, f"{key}.public_key", "give exactly one of public_key or public_key_file"
        )
    if has_inline:
        pem_key = f"{key}.public_key"
        pem = _string(source, pem_key, entry["public_key"]).encode("ascii", "replace")
    else:
        pem_key = f"{key}.public_key_file"
        pem_path = Path(os.path.expanduser(_string(source, pem_key, entry["public_key_file"])))
        pem_path = pem_path if pem_path.is_absolute() else base_dir / pem_path
        _check_not_writable_by_others(pem_path, source, pem_key)
        try:
            pem = pem_path.read_bytes()
        except OSError as exc:
            raise IssuerConfigError(
                source, pem_key, f"{pem_path} cannot be read ({exc.strerror})"
            ) from None
    try:
        public_key = load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise IssuerConfigError(source, pem_key, "is not a PEM public key") from None
    if alg == "EdDSA" and not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise IssuerConfigError(source, pem_key, "is not an Ed25519 key (alg is EdDSA)")
    if alg == "ES256" and not (
        isinstance(public_key, ec.EllipticCurvePublicKey)
        and isinstance(public_key.curve, ec.SECP256R1)
    ):
        raise IssuerConfigError(source, pem_key, "is not a P-256 EC key (alg is ES256)")
    return TrustedKey(kid=kid, alg=alg, public_key=public_key)
