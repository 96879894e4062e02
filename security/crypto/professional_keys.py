"""Signing keys of professionals (doctors, pharmacists) and institutions' seals, with the
registry of their public keys that anyone can fetch to check a signature.

One key per (organisation, professional code), of the profile's algorithm when it is first
used: Ed25519 (RFC 8032) in the standard profile, SM2 with SM3 and the GM/T 0009 default
user id (GB/T 32918.2) in the national profile, as ``security.crypto.sm2`` signs checkpoints.
The gateway holds the private keys on the professionals' behalf, as a hospital's signing
service does (owner-only files under ``<data>/keys/professionals/``, never in git); it signs
with a key only for a caller of that organisation (the mutation checks the caller).

A signature is the text ``<algorithm>:<keyId>:<base64 signature>``: ``algorithm`` is
``ed25519`` or ``sm2-sm3``, ``keyId`` the first 16 hex digits of the SHA-256 of the key's
DER SubjectPublicKeyInfo, and the signature raw (Ed25519, 64 bytes) or DER ``SEQUENCE {r, s}``
(SM2), exactly what ``openssl pkeyutl -sign -rawin`` makes. The registration of a key,
``<keyId>.json`` beside it, names the organisation, the code, the algorithm and the public key
as SPKI PEM, which ``openssl pkeyutl -verify -pubin`` reads as it is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from security.crypto.key_files import create_private_once, exposure, replace_file
from security.crypto.sm2 import SM2Signer, SM2Verifier
from security.errors import MedfedError

ED25519 = "ed25519"
SM2_SM3 = "sm2-sm3"
ALGORITHM_OF_PROFILE = {"standard": ED25519, "national": SM2_SM3}
# DER SubjectPublicKeyInfo header of an SM2 point (id-ecPublicKey, curve 1.2.156.10197.1.301).
SM2_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
CODE_RE = re.compile(r"^[0-9A-Z]{6,16}$")
SIGNATURE_RE = re.compile(r"^(ed25519|sm2-sm3):([0-9a-f]{16}):([A-Za-z0-9+/=]{1,200})$")


class ProfessionalKeyError(MedfedError):
    """A key that cannot be made, read or trusted; the message names the file, never a key."""


@dataclass(frozen=True)
class RegisteredKey:
    key_id: str
    org: str
    code: str
    algorithm: str
    public_pem: str
    registered_at: str

    def as_json(self) -> dict[str, str]:
        return {
            "keyId": self.key_id,
            "org": self.org,
            "code": self.code,
            "algorithm": self.algorithm,
            "publicKeyPem": self.public_pem,
            "registeredAt": self.registered_at,
        }

    def spki_der(self) -> bytes:
        return _pem_body(self.public_pem)

    def verify(self, message: bytes, signature: bytes) -> bool:
        der = self.spki_der()
        if self.algorithm == ED25519:
            key = serialization.load_der_public_key(der)
            assert isinstance(key, Ed25519PublicKey)
            try:
                key.verify(signature, message)
            except InvalidSignature:
                return False
            return True
        return SM2Verifier(self.key_id, der[len(SM2_SPKI_PREFIX) :]).verify(message, signature)


def _pem(der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def _pem_body(pem: str) -> bytes:
    lines = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
    return base64.b64decode("".join(lines))


def key_id_of(spki_der: bytes) -> str:
    return hashlib.sha256(spki_der).hexdigest()[:16]


class _Signer:
    def __init__(self, algorithm: str, private: bytes) -> None:
        self.algorithm = algorithm
        if algorithm == ED25519:
            self._ed = Ed25519PrivateKey.from_private_bytes(private)
            self.spki = self._ed.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            self._sm2 = SM2Signer("professional", private)
            self.spki = SM2_SPKI_PREFIX + self._sm2.public_point
        self.key_id = key_id_of(self.spki)

    def sign(self, message: bytes) -> str:
        raw = self._ed.sign(message) if self.algorithm == ED25519 else self._sm2.sign(message)
        return f"{self.algorithm}:{self.key_id}:{base64.b64encode(raw).decode()}"


class ProfessionalKeys:
    """The key store of one gateway: signs for (org, code), looks registered keys up."""

    def __init__(self, keys_dir: Path, profile: str = "standard") -> None:
        self.root = Path(keys_dir) / "professionals"
        try:
            self.algorithm = ALGORITHM_OF_PROFILE[profile]
        except KeyError:
            raise ProfessionalKeyError(f"unknown crypto profile '{profile}'") from None
        self._signers: dict[tuple[str, str], _Signer] = {}
        self._registered: dict[str, RegisteredKey | None] = {}
        self._lock = threading.Lock()

    # -- signing ---------------------------------------------------------------------------
    def sign(self, org: str, code: str, message: bytes) -> str:
        return self._signer(org, code).sign(message)

    def _signer(self, org: str, code: str) -> _Signer:
        found = self._signers.get((org, code))
        if found is None:
            with self._lock:
                found = self._signers.get((org, code)) or self._load_or_create(org, code)
                self._signers[(org, code)] = found
        return found

    def _load_or_create(self, org: str, code: str) -> _Signer:
        if not CODE_RE.match(org) or not CODE_RE.match(code):
            raise ProfessionalKeyError("an organisation or professional code of 6-16 of 0-9 A-Z")
        path = self.root / f"{org}-{code}.key"

        def make() -> bytes:
            if self.algorithm == ED25519:
                raw = Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            else:
                raw = SM2Signer.generate("professional").private_key_bytes()
            return f"{self.algorithm}:{raw.hex()}\n".encode("ascii")

        path.parent.mkdir(parents=True, exist_ok=True)
        create_private_once(path, make)
        if problem := exposure(path):
            raise ProfessionalKeyError(problem)
        try:
            algorithm, hex_key = path.read_text(encoding="ascii").strip().split(":")
            signer = _Signer(algorithm, bytes.fromhex(hex_key))
        except (ValueError, UnicodeDecodeError):
            raise ProfessionalKeyError(f"{path} is not a professional signing key") from None
        registration = self.root / f"{signer.key_id}.json"
        if not registration.exists():
            key = RegisteredKey(
                signer.key_id,
                org,
                code,
                algorithm,
                _pem(signer.spki),
                datetime.now(UTC).replace(microsecond=0).isoformat(),
            )
            replace_file(registration, (json.dumps(key.as_json()) + "\n").encode(), mode=0o644)
        return signer

    # -- the registry ----------------------------------------------------------------------
    def registered(self, key_id: str) -> RegisteredKey | None:
        """The registration of ``key_id`` (16 hex digits), or None."""
        if not re.fullmatch(r"[0-9a-f]{16}", key_id):
            return None
        if key_id in self._registered:
            return self._registered[key_id]
        path = self.root / f"{key_id}.json"
        found = None
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            found = RegisteredKey(
                data["keyId"],
                data["org"],
                data["code"],
                data["algorithm"],
                data["publicKeyPem"],
                data["registeredAt"],
            )
        self._registered[key_id] = found
        return found

    def verify(self, signature: str | None, message: bytes) -> Verdict:
        """Whether ``signature`` (the text form) is a registered key's over ``message``."""
        parsed = parse(signature)
        if parsed is None:
            return Verdict(False, None, "not a signature of a registered key's form")
        algorithm, key_id, raw = parsed
        key = self.registered(key_id)
        if key is None or key.algorithm != algorithm:
            return Verdict(False, None, "signed by a key this gateway has not registered")
        if not key.verify(message, raw):
            return Verdict(False, key, "the signature does not match the record")
        return Verdict(True, key, None)


@dataclass(frozen=True)
class Verdict:
    valid: bool
    key: RegisteredKey | None
    reason: str | None


def parse(signature: str | None) -> tuple[str, str, bytes] | None:
    """(algorithm, keyId, raw signature) of a signature's text form, or None."""
    match = SIGNATURE_RE.match(signature or "")
    if not match:
        return None
    try:
        raw = base64.b64decode(match.group(3), validate=True)
    except ValueError:
        return None
    return match.group(1), match.group(2), raw
