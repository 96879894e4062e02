"""The gateway's sealing key: what signs format-2 sealed answers, and how a partner pins it.

Standard profile: an Ed25519 key in ``<keys-dir>/sealing.pem`` (owner-only, made on first use),
published as a C2SP verifier key string ``medfed-sealing+<hash>+<base64>`` in
``<keys-dir>/sealing.pub``. The operator hands that one line to partners (``medfed partner
keygen`` copies it beside the partner's private key); the partner pins it.

National profile: an SM2 key (``sealing.sm2``, published the same way). Signing every answer
with SM2 would mean the pure-Python, not constant-time ``gmalg`` signing attacker-triggered
messages at volume (about 16 ms each here), which ``security.crypto.sm2`` rules out. So the
SM2 key signs, once per process start and then daily, a *delegation* of a fresh Ed25519 key
(``"medfed-sealed/2 delegation\\n" || Ed25519 public key || notAfter``, notAfter in Unix
seconds, big-endian, 8 bytes), and that Ed25519 key signs the answers. The delegation travels
in ``extensions.sealing.delegation {key, notAfter, signature}``; a partner that pinned an SM2
key verifies it first, then the answer with the delegated key.

The same key type is used for every answer, so a verifier needs only the pinned string.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from security.audit.signer import (
    AuditKeyError,
    Ed25519Verifier,
    Signer,
    Verifier,
    load_or_create_ed25519,
    parse_verifier_key,
    publish_verifier_key,
)
from security.crypto.hpke_seal import SealingError
from security.errors import MedfedError

KEY_NAME = "medfed-sealing"
PRIVATE_FILE, SM2_PRIVATE_FILE, VERIFIER_FILE = "sealing.pem", "sealing.sm2", "sealing.pub"
DELEGATION_LABEL = b"medfed-sealed/2 delegation\n"
DELEGATION_SECONDS = 24 * 3600


class SealingKeyError(MedfedError):
    """The sealing key is missing, unsafe or malformed; the gateway must not seal without it."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise SealingError("the sealing key delegation is malformed")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise SealingError("the sealing key delegation is malformed") from None


def _delegation_message(public: bytes, not_after: int) -> bytes:
    return DELEGATION_LABEL + public + not_after.to_bytes(8, "big")


@dataclass(frozen=True)
class SigningSession:
    """What one answer is signed with: the key's name, the delegation to publish (None when
    the long-term key signs directly) and the signing function."""

    name: str
    delegation: dict[str, Any] | None
    sign: Callable[[bytes], bytes]


class SealingSigner:
    """Signs answers: directly (Ed25519) or through a daily delegated Ed25519 key (SM2)."""

    def __init__(self, long_term: Signer) -> None:
        self.long_term = long_term
        self.name = long_term.name
        self._direct = isinstance(long_term, Ed25519Verifier)
        self._lock = threading.Lock()
        self._session: SigningSession | None = None
        self._renew_at = 0

    def session(self) -> SigningSession:
        if self._direct:
            return SigningSession(self.name, None, self.long_term.sign)
        with self._lock:
            now = int(time.time())
            if self._session is None or now >= self._renew_at:
                key = Ed25519PrivateKey.generate()
                public = key.public_key().public_bytes_raw()
                not_after = now + DELEGATION_SECONDS
                signature = self.long_term.sign(_delegation_message(public, not_after))
                delegation = {
                    "key": _b64(public),
                    "notAfter": not_after,
                    "signature": _b64(signature),
                }
                self._session = SigningSession(self.name, delegation, key.sign)
                self._renew_at = now + DELEGATION_SECONDS // 2  # never close to expiry
            return self._session


def load_sealing_signer(keys_dir: Path, profile: str = "standard") -> SealingSigner:
    """The gateway's sealing signer for a crypto profile; made on first use, published in
    ``sealing.pub``."""
    try:
        if profile == "standard":
            signer: Signer = load_or_create_ed25519(
                keys_dir, KEY_NAME, private_file=PRIVATE_FILE, verifier_file=VERIFIER_FILE
            )
        elif profile == "national":
            from security.crypto.sm2 import SM2KeyError, load_or_create_sm2

            try:
                signer = load_or_create_sm2(keys_dir, KEY_NAME, private_file=SM2_PRIVATE_FILE)
            except SM2KeyError as exc:
                raise SealingKeyError(str(exc)) from None
            publish_verifier_key(keys_dir, signer, VERIFIER_FILE)
        else:
            raise SealingKeyError(f"no sealing key for crypto profile {profile!r}")
    except AuditKeyError as exc:
        raise SealingKeyError(str(exc)) from None
    return SealingSigner(signer)


@dataclass(frozen=True)
class GatewayKey:
    """A partner's pinned gateway key: checks an answer's signature (through its delegation
    when the key is SM2)."""

    verifier: Verifier

    @classmethod
    def parse(cls, text: str) -> GatewayKey:
        try:
            return cls(parse_verifier_key(text))
        except AuditKeyError as exc:
            raise SealingError(f"gateway key: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> GatewayKey:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SealingError(f"{path}: cannot read: {exc.strerror}") from None
        return cls.parse(text)

    def checker(self, sealing: dict[str, Any], now: float | None = None):
        """A ``verify(message, signature)`` for one answer's ``extensions.sealing``."""
        if isinstance(self.verifier, Ed25519Verifier):
            return self.verifier.verify
        delegation = sealing.get("delegation")
        if not isinstance(delegation, dict):
            raise SealingError("the answer carries no delegation for the pinned SM2 key")
        public, not_after = _unb64(delegation.get("key")), delegation.get("notAfter")
        if not isinstance(not_after, int) or len(public) != 32:
            raise SealingError("the sealing key delegation is malformed")
        if not self.verifier.verify(
            _delegation_message(public, not_after), _unb64(delegation.get("signature"))
        ):
            raise SealingError("the sealing key delegation is not signed by the pinned key")
        if (time.time() if now is None else now) > not_after:
            raise SealingError("the answer was signed under a delegation that has expired")
        session = Ed25519PublicKey.from_public_bytes(public)

        def verify(message: bytes, signature: bytes) -> bool:
            try:
                session.verify(signature, message)
            except InvalidSignature:
                return False
            return True

        return verify
