"""AES-256-GCM encryption of single field values, bound to their table, column and row.

Ciphertext layout (version 1)::

    0x01 | len(key_id) (1 byte) | key_id (ascii) | nonce (12 bytes) | ciphertext + tag

The header and the cell address (table, column, row key) are the associated data, so a value
copied into another cell, or a header pointed at another key, fails to decrypt.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from security.crypto.keyring import AES_256_GCM, KeyRing, KeyRingError

VERSION = 1
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext that is damaged, moved to another cell, or under an unknown key."""


class FieldCipher:
    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring
        self._aeads: dict[str, AESGCM] = {}

    def _aead(self, key_id: str) -> AESGCM:
        aead = self._aeads.get(key_id)
        if aead is None:
            key = self._keyring.key(key_id)
            if key.algorithm != AES_256_GCM:
                raise KeyRingError(f"key '{key_id}' uses unsupported algorithm {key.algorithm}")
            aead = self._aeads[key_id] = AESGCM(key.material)
        return aead

    @staticmethod
    def _aad(header: bytes, table: str, column: str, row_key: str) -> bytes:
        return b"%s|%s|%s|%s" % (header, table.encode(), column.encode(), row_key.encode())

    def encrypt(self, value: str, *, source: str, table: str, column: str, row_key: str) -> bytes:
        key_id = self._keyring.current_key(source).key_id.encode("ascii")
        header = bytes((VERSION, len(key_id))) + key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead(key_id.decode()).encrypt(
            nonce, value.encode("utf-8"), self._aad(header, table, column, row_key)
        )
        return header + nonce + sealed

    def decrypt(self, blob: bytes, *, table: str, column: str, row_key: str) -> str:
        if len(blob) < 2 + NONCE_BYTES + 16 or blob[0] != VERSION:
            raise DecryptionError(f"{table}.{column}[{row_key}]: not a medfed v1 ciphertext")
        end = 2 + blob[1]
        header, nonce, sealed = blob[:end], blob[end : end + NONCE_BYTES], blob[end + NONCE_BYTES :]
        try:
            key_id = header[2:].decode("ascii")
            plain = self._aead(key_id).decrypt(
                nonce, sealed, self._aad(header, table, column, row_key)
            )
        except (InvalidTag, UnicodeDecodeError, KeyRingError) as exc:
            raise DecryptionError(
                f"{table}.{column}[{row_key}]: ciphertext does not open here "
                f"({type(exc).__name__})"
            ) from None
        return plain.decode("utf-8")

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        return blob[2 : 2 + blob[1]].decode("ascii")
