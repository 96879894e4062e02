"""Checkpoint signers and verifiers behind a small protocol, so an SM2 signer can be added
beside Ed25519 without touching the log or the note format.

The Ed25519 signing key lives in ``<keys-dir>/audit-log.pem`` (owner-only) and is created on
first use; its public half is published next to it as a C2SP verifier key
(``audit-log.pub``), the one string an outside party needs to check checkpoints. Under the
national crypto profile the log signs with SM2 instead (``<keys-dir>/audit-log.sm2``), and
``audit-log.pub`` publishes that key.

Signature types (the byte after the key hash in a verifier key, C2SP signed-note):

* ``0x01`` Ed25519, followed by the 32-byte public key (the format's own type);
* ``0xff`` SM2 with SM3 (GB/T 32918.2, GM/T 0009 default user id), followed by the ASCII
  identifier ``medfed/sm2-sm3`` and a newline, then the 65-byte uncompressed point. The
  format leaves algorithms without an assigned byte to ``0xff`` plus an identifier of their
  own; the identifier is part of the hashed key, so an SM2 key can never pass for another
  algorithm's. Signatures are DER ``SEQUENCE {r, s}``.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from security.crypto.key_files import create_private_once, exposure, replace_file
from security.errors import MedfedError

ED25519 = 0x01  # C2SP signed-note signature type for Ed25519
OTHER = 0xFF  # C2SP: "no assigned byte"; the key continues with its own identifier (SM2)
PRIVATE_KEY_FILE = "audit-log.pem"
VERIFIER_KEY_FILE = "audit-log.pub"


class AuditKeyError(MedfedError):
    """A signing or verifier key that is missing, malformed or unsafe."""


@runtime_checkable
class Verifier(Protocol):
    name: str
    algorithm_id: int
    public_key_bytes: bytes

    def verify(self, message: bytes, signature: bytes) -> bool: ...


@runtime_checkable
class Signer(Verifier, Protocol):
    def sign(self, message: bytes) -> bytes: ...


def check_key_name(name: str) -> str:
    # C2SP: a key name is non-empty UTF-8 with no whitespace and no '+'.
    if not name or "+" in name or any(c.isspace() for c in name):
        raise AuditKeyError(f"key name {name!r} must be non-empty, with no spaces and no '+'")
    return name


def key_hash(verifier: Verifier) -> bytes:
    """The 4-byte key id C2SP puts in front of every signature."""
    material = (
        verifier.name.encode() + b"\n" + bytes([verifier.algorithm_id]) + verifier.public_key_bytes
    )
    return hashlib.sha256(material).digest()[:4]


def verifier_key_string(verifier: Verifier) -> str:
    """``<name>+<hex key hash>+<base64(type || public key)>``."""
    encoded = base64.b64encode(bytes([verifier.algorithm_id]) + verifier.public_key_bytes)
    return f"{verifier.name}+{key_hash(verifier).hex()}+{encoded.decode()}"


class Ed25519Verifier:
    algorithm_id = ED25519

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        self.name = check_key_name(name)
        self._public = public_key
        self.public_key_bytes = public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Ed25519Signer(Ed25519Verifier):
    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        super().__init__(name, private_key.public_key())
        self._private = private_key

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self._public)


def parse_verifier_key(text: str) -> Verifier:
    """A verifier from its C2SP string; fails unless the embedded key hash matches."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise AuditKeyError("a verifier key looks like <name>+<8 hex digits>+<base64 key>")
    name, hash_hex, encoded = parts
    try:
        raw = base64.b64decode(encoded, validate=True)
        expected_hash = bytes.fromhex(hash_hex)
    except ValueError:
        raise AuditKeyError("verifier key: the key hash or key is not valid hex/base64") from None
    check_key_name(name)
    verifier = _verifier_of(name, raw)
    if len(expected_hash) != 4 or key_hash(verifier) != expected_hash:
        raise AuditKeyError("verifier key: the key hash does not match the name and key")
    return verifier


def _verifier_of(name: str, raw: bytes) -> Verifier:
    if raw[:1] == bytes([ED25519]) and len(raw) == 33:
        return Ed25519Verifier(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
    if raw[:1] == bytes([OTHER]):
        from security.crypto.sm2 import KEY_TYPE_TAG, SM2KeyError, SM2Verifier

        if raw[1:].startswith(KEY_TYPE_TAG):
            try:
                return SM2Verifier.from_public_key_bytes(name, raw[1:])
            except SM2KeyError as exc:
                raise AuditKeyError(f"verifier key: {exc}") from None
    raise AuditKeyError(
        "verifier key: only Ed25519 (type 0x01, 32 bytes) and SM2 (type "
        "0xff, identifier medfed/sm2-sm3) keys are supported"
    )


SIGNER_PROFILES = ("standard", "national")


def load_or_create_signer(keys_dir: Path, name: str, profile: str = "standard") -> Signer:
    """The checkpoint signer of a crypto profile: Ed25519 (standard) or SM2 (national).

    An unknown profile is an error rather than a fallback: the log must not quietly sign
    with an algorithm the deployment did not choose.
    """
    if profile == "standard":
        return load_or_create_ed25519(keys_dir, name)
    if profile == "national":
        from security.crypto.sm2 import SM2KeyError, load_or_create_sm2

        check_key_name(name)
        try:
            signer = load_or_create_sm2(keys_dir, name)
        except SM2KeyError as exc:
            raise AuditKeyError(str(exc)) from None
        publish_verifier_key(keys_dir, signer)
        return signer
    raise AuditKeyError(
        f"no checkpoint signer for crypto profile {profile!r} (use {' or '.join(SIGNER_PROFILES)})"
    )


def load_or_create_ed25519(
    keys_dir: Path,
    name: str,
    *,
    private_file: str = PRIVATE_KEY_FILE,
    verifier_file: str = VERIFIER_KEY_FILE,
) -> Ed25519Signer:
    """The log's signing key (or another key of the same kind, such as the gateway's sealing
    key, under its own file names), generated on first use; safe when processes race to
    create it."""
    check_key_name(name)
    path = keys_dir / private_file
    create_private_once(
        path,
        lambda: Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    if problem := exposure(path):
        raise AuditKeyError(problem)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise AuditKeyError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} is not an Ed25519 key")
    signer = Ed25519Signer(name, key)
    publish_verifier_key(keys_dir, signer, verifier_file)
    return signer


def publish_verifier_key(
    keys_dir: Path, verifier: Verifier, verifier_file: str = VERIFIER_KEY_FILE
) -> Path:
    path = keys_dir / verifier_file
    text = verifier_key_string(verifier) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        replace_file(path, text.encode("utf-8"), mode=0o644)
    return path
