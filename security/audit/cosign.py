"""C2SP tlog-cosignature v1 (Ed25519): a witness's statement that it saw a checkpoint and
that it is consistent with every earlier one it saw (https://c2sp.org/tlog-cosignature).

A cosignature is a note signature line ``— <witness name> base64(key ID || timestamp ||
signature)``: the key ID is ``SHA-256(name || "\\n" || 0x04 || public key)[:4]``, the
timestamp a big-endian u64 of POSIX seconds, and the Ed25519 signature covers
``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint body. Its verifier key is
a C2SP vkey of signature type ``0x04``. The witness key lives in ``<keys-dir>/witness.pem``
(owner-only, made on first use) and its vkey is published in ``witness.pub``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from security.audit.note import SIGNATURE_PREFIX, NoteError
from security.audit.signer import AuditKeyError, check_key_name
from security.crypto.key_files import create_private_once, exposure, replace_file

COSIGNATURE_V1 = 0x04
WITNESS_KEY_FILE = "witness.pem"
WITNESS_VERIFIER_FILE = "witness.pub"
_TIMESTAMP = struct.Struct(">Q")


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([COSIGNATURE_V1]) + public).digest()[:4]


def _message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class WitnessKey:
    """A witness's public key: checks its cosignatures."""

    name: str
    public: bytes  # 32-byte Ed25519

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.public)

    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([COSIGNATURE_V1]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> WitnessKey:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise AuditKeyError("a witness key looks like <name>+<8 hex digits>+<base64 key>")
        name, hash_hex, encoded = parts
        check_key_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
            claimed = bytes.fromhex(hash_hex)
        except ValueError:
            raise AuditKeyError("witness key: the key hash or key is not hex/base64") from None
        if len(raw) != 33 or raw[0] != COSIGNATURE_V1:
            raise AuditKeyError("witness key: not an Ed25519 cosignature key (type 0x04)")
        key = cls(name, raw[1:])
        if claimed != key.key_id:
            raise AuditKeyError("witness key: the key hash does not match the name and key")
        return key

    def cosigned_at(self, note: str) -> int:
        """The timestamp of this witness's valid cosignature on ``note``; raises NoteError
        when there is none, or when one by this key does not verify."""
        split = note.rfind("\n\n")
        if split < 0:
            raise NoteError("not a signed note")
        body, lines = note[: split + 1], note[split + 2 :].splitlines()
        public = Ed25519PublicKey.from_public_bytes(self.public)
        for line in lines:
            if not line.startswith(SIGNATURE_PREFIX):
                raise NoteError(f"malformed signature line {line!r}")
            name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
            if name != self.name:
                continue
            try:
                raw = base64.b64decode(blob, validate=True)
            except binascii.Error:
                raise NoteError(f"cosignature by {name!r} is not base64") from None
            if len(raw) != 4 + 8 + 64 or raw[:4] != self.key_id:
                continue
            (timestamp,) = _TIMESTAMP.unpack(raw[4:12])
            try:
                public.verify(raw[12:], _message(body, timestamp))
            except InvalidSignature:
                raise NoteError(f"the cosignature by {name} does not verify") from None
            return timestamp
        raise NoteError(f"no cosignature by witness {self.name}")


class WitnessSigner:
    def __init__(self, name: str, private: Ed25519PrivateKey) -> None:
        self.name = check_key_name(name)
        self._private = private
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key = WitnessKey(name, public)

    def cosign(self, body: str, timestamp: int | None = None) -> str:
        """One cosignature line for a checkpoint body (which ends with a newline)."""
        stamp = int(time.time()) if timestamp is None else timestamp
        signature = self._private.sign(_message(body, stamp))
        blob = base64.b64encode(self.key.key_id + _TIMESTAMP.pack(stamp) + signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {blob}\n"


def load_or_create_witness(keys_dir: Path, name: str) -> WitnessSigner:
    """The witness's signing key, made on first use; its vkey published in witness.pub."""
    path = keys_dir / WITNESS_KEY_FILE
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
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} is not an Ed25519 key")
    signer = WitnessSigner(name, key)
    published = keys_dir / WITNESS_VERIFIER_FILE
    text = signer.key.vkey() + "\n"
    if not published.exists() or published.read_text(encoding="utf-8") != text:
        replace_file(published, text.encode("utf-8"), mode=0o644)
    return signer
