"""HPKE suites and key encodings for sealed answers, and the first sealed format (read only).

The suites, the raw key encodings and :class:`SealingError` serve both formats. Format 1
below (one HPKE base-mode encryption per value, no signature) is what the gateway wrote
before ``security.crypto.sealed_answer`` (format 2); the partner may still open it, with a
warning, and the tests forge it to show that a pinned partner refuses it.

Envelope: ``medfed-sealed:v1:<kid>:<base64url(enc || ciphertext)>`` (no padding). The
plaintext is the value's exact JSON serialisation as GraphQL produced it, so opening restores
the unsealed answer byte for byte after parsing.

``info`` binds each envelope to the key id, the request id and the value's response path
(aliases included, list indexes as integers): an envelope copied to another field, another
list position or another response does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from security.errors import MedfedError

PREFIX = "medfed-sealed:v1:"
KID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
X25519 = "X25519"
HYBRID = "MLKEM768-X25519"
KEM_NAMES = (X25519, HYBRID)
_KEMS = {X25519: hpke.KEM.X25519, HYBRID: hpke.KEM.MLKEM768_X25519}
_X25519_LEN = 32
_MLKEM768_PUBLIC_LEN = 1184
_MLKEM768_SEED_LEN = 64

PublicKey = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
PrivateKey = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey
Path = Sequence[str | int]


class SealingError(MedfedError, ValueError):
    """A key or an envelope is malformed, or an envelope does not open."""


def suite_name(kem: str) -> str:
    return f"{kem}/HKDF-SHA256/AES-256-GCM"


def suite(kem: str) -> hpke.Suite:
    try:
        return hpke.Suite(_KEMS[kem], hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    except KeyError:
        raise SealingError(f"kem {kem!r} is not one of {', '.join(KEM_NAMES)}") from None


def info(kid: str, request_id: str, path: Path) -> bytes:
    # Hashed so arbitrarily deep paths stay within every HPKE implementation's info limit;
    # JSON keeps ["a.b"] and ["a", "b"] (and "0" vs 0) distinct.
    canonical = json.dumps([kid, request_id, list(path)], separators=(",", ":"), ensure_ascii=False)
    return b"medfed-sealed:v1:" + hashlib.sha256(canonical.encode()).digest()


def dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


# -- raw key encodings ---------------------------------------------------------------------
# X25519: the 32-byte key. Hybrid: ML-KEM-768 public key (1184 bytes) || X25519 public key;
# private: ML-KEM-768 seed (64 bytes) || X25519 private key.


def public_from_bytes(kem: str, raw: bytes) -> PublicKey:
    try:
        if kem == X25519:
            return x25519.X25519PublicKey.from_public_bytes(raw)
        if kem == HYBRID and len(raw) == _MLKEM768_PUBLIC_LEN + _X25519_LEN:
            return hpke.MLKEM768X25519PublicKey(
                mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PUBLIC_LEN]),
                x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM768_PUBLIC_LEN:]),
            )
    except ValueError:
        pass
    suite(kem)  # names an unknown kem
    raise SealingError(f"not a valid {kem} public key ({len(raw)} bytes)")


def private_from_bytes(kem: str, raw: bytes) -> PrivateKey:
    try:
        if kem == X25519:
            return x25519.X25519PrivateKey.from_private_bytes(raw)
        if kem == HYBRID and len(raw) == _MLKEM768_SEED_LEN + _X25519_LEN:
            return hpke.MLKEM768X25519PrivateKey(
                mlkem.MLKEM768PrivateKey.from_seed_bytes(raw[:_MLKEM768_SEED_LEN]),
                x25519.X25519PrivateKey.from_private_bytes(raw[_MLKEM768_SEED_LEN:]),
            )
    except ValueError:
        pass
    suite(kem)
    raise SealingError(f"not a valid {kem} private key ({len(raw)} bytes)")


@dataclass(frozen=True)
class KeyPair:
    kem: str
    private_raw: bytes
    public_raw: bytes


def generate(kem: str) -> KeyPair:
    x = x25519.X25519PrivateKey.generate()
    x_pub = x.public_key().public_bytes_raw()
    if kem == X25519:
        return KeyPair(kem, x.private_bytes_raw(), x_pub)
    if kem == HYBRID:
        m = mlkem.MLKEM768PrivateKey.generate()
        return KeyPair(
            kem,
            m.private_bytes_raw() + x.private_bytes_raw(),
            m.public_key().public_bytes_raw() + x_pub,
        )
    suite(kem)
    raise AssertionError("unreachable")


def b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SealingError(f"{what} is not valid base64") from None


# -- sealing and opening ---------------------------------------------------------------------


def plaintext(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def seal(kem: str, public_key: PublicKey, kid: str, request_id: str, path: Path, value: Any) -> str:
    sealed = suite(kem).encrypt(plaintext(value), public_key, info=info(kid, request_id, path))
    return PREFIX + kid + ":" + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


def is_envelope(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def open_envelope(
    envelope: str, kem: str, private_key: PrivateKey, kid: str, request_id: str, path: Path
) -> Any:
    where = dotted(path)
    env_kid, sep, body = envelope[len(PREFIX) :].partition(":")
    if not sep:
        raise SealingError(f"{where}: malformed sealed value")
    if env_kid != kid:
        raise SealingError(f"{where}: sealed to key {env_kid!r}, not {kid!r}")
    try:
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise SealingError(f"{where}: malformed sealed value") from None
    try:
        plain = suite(kem).decrypt(sealed, private_key, info=info(kid, request_id, path))
    except (InvalidTag, ValueError):
        raise SealingError(
            f"{where}: sealed value does not open here (wrong key, path or request, or tampered)"
        ) from None
    return json.loads(plain)
