"""SM2 signatures (GB/T 32918.2, with SM3 and the GM/T 0009 user id) for audit checkpoints.

Implements the audit log's signer shape (``security.audit.signer``: ``name``,
``algorithm_id``, ``public_key_bytes``, ``sign``, ``verify``) so the national profile signs
tree heads with SM2 instead of Ed25519.

``cryptography`` has SM3 and SM4 but no SM2, so the curve arithmetic comes from ``gmalg``
(pure Python, MIT, released 2026, tested against the standard's vectors). It draws the
per-signature nonce from :mod:`secrets`; ``gmssl`` (the most downloaded alternative) draws it
from :mod:`random` (Mersenne Twister), which leaks the private key after a few signatures, and
the GmSSL/Tongsuo bindings need a system library or are unmaintained. Pure Python is not
constant-time: fine for a checkpoint every few seconds on the gateway's own host, not for
signing attacker-chosen messages at volume.

Encodings: signatures are DER ``SEQUENCE { r, s }`` (GM/T 0009, what OpenSSL and GmSSL emit);
``public_key_bytes`` is :data:`KEY_TYPE_TAG` followed by the uncompressed point
``04 || x || y``, because C2SP signed notes give non-Ed25519 keys the type byte 0xff followed by
an identifier of their own.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from gmalg import SM2

from security.crypto.key_files import create_private_once, exposure
from security.errors import MedfedError

ALGORITHM_ID = 0xFF  # C2SP signed-note: "signature types without an assigned byte"
KEY_TYPE_TAG = b"medfed/sm2-sm3\n"
DEFAULT_UID = b"1234567812345678"  # GM/T 0009's default distinguishing identifier
ORDER = 0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_7203DF6B_21C6052B_53BBF409_39D54123
PRIVATE_KEY_FILE = "audit-log.sm2"


class SM2KeyError(MedfedError):
    """An SM2 key that is missing, malformed or unsafe."""


def _check_point(point: bytes) -> bytes:
    if len(point) != 65 or point[0] != 0x04:
        raise SM2KeyError("an SM2 public key is the 65-byte uncompressed point 04||x||y")
    try:
        valid = SM2().verify_pk(point)
    except Exception:  # gmalg raises its own error types for off-curve points
        valid = False
    if not valid:
        raise SM2KeyError("the SM2 public key is not a point of the SM2 curve's group")
    return point


class SM2Verifier:
    algorithm_id = ALGORITHM_ID

    def __init__(self, name: str, public_point: bytes, *, uid: bytes = DEFAULT_UID) -> None:
        self.name = name
        self.uid = uid
        self.public_point = _check_point(public_point)
        self.public_key_bytes = KEY_TYPE_TAG + self.public_point
        self._sm2 = SM2(pk=self.public_point, uid=uid)

    @classmethod
    def from_public_key_bytes(
        cls, name: str, data: bytes, *, uid: bytes = DEFAULT_UID
    ) -> SM2Verifier:
        if not data.startswith(KEY_TYPE_TAG):
            raise SM2KeyError("not a medfed SM2 public key (missing its type tag)")
        return cls(name, data[len(KEY_TYPE_TAG) :], uid=uid)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, public={self.public_point.hex()[:16]}…)"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            r, s = decode_dss_signature(signature)
        except ValueError:
            return False
        if not (0 < r < ORDER and 0 < s < ORDER):
            return False
        return bool(self._sm2.verify(message, r.to_bytes(32, "big"), s.to_bytes(32, "big")))


class SM2Signer(SM2Verifier):
    def __init__(self, name: str, private_key: bytes, *, uid: bytes = DEFAULT_UID) -> None:
        scalar = int.from_bytes(private_key, "big")
        if len(private_key) != 32 or not 0 < scalar < ORDER - 1:
            raise SM2KeyError("an SM2 private key is a 32-byte scalar in [1, n-2]")
        super().__init__(name, SM2().generate_pk(private_key), uid=uid)
        self._private = bytes(private_key)
        self._signer = SM2(sk=private_key, pk=self.public_point, uid=uid)

    @classmethod
    def generate(cls, name: str, *, uid: bytes = DEFAULT_UID) -> SM2Signer:
        while True:  # rejection sampling keeps the scalar uniform in [1, n-2]
            scalar = secrets.randbelow(ORDER - 1)
            if scalar:
                return cls(name, scalar.to_bytes(32, "big"), uid=uid)

    def private_key_bytes(self) -> bytes:
        """The raw scalar, for saving to an owner-only file; never logged."""
        return self._private

    def sign(self, message: bytes) -> bytes:
        r, s = self._signer.sign(message)
        return encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))

    def verifier(self) -> SM2Verifier:
        return SM2Verifier(self.name, self.public_point, uid=self.uid)


def load_or_create_sm2(
    keys_dir: Path, name: str, *, private_file: str = PRIVATE_KEY_FILE
) -> SM2Signer:
    """The checkpoint signing key (or the gateway's sealing key, under its own file name),
    generated on first use into an owner-only file; safe when processes race to create it
    (the first link wins)."""
    path = Path(keys_dir) / private_file
    create_private_once(
        path, lambda: (SM2Signer.generate(name).private_key_bytes().hex() + "\n").encode("ascii")
    )
    if problem := exposure(path):
        raise SM2KeyError(problem)
    try:
        raw = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError):
        raise SM2KeyError(f"{path} is not a hex SM2 private key") from None
    return SM2Signer(name, raw)
