"""Authenticated encryption of single field values, bound to their table, column and row.

Ciphertext layout (version 1, unchanged by envelope keys and by the national profile)::

    0x01 | len(key_id) (1 byte) | key_id (ascii) | nonce (12 bytes) | ciphertext + tag (16)

The key id names the data key, and the key records its algorithm (AES-256-GCM in the standard
profile, SM4-GCM in the national one), so one database may hold values of both while it is
re-encrypted. The header and the cell address (table, column, row key) are the associated
data, so a value copied into another cell, or a header pointed at another key, fails.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag

from security.crypto.algorithms import TAG_BYTES, Aead, aead_for
from security.crypto.keyring import KeyRing, KeyRingError

VERSION = 1
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext that is damaged, moved to another cell, or under an unknown key."""


class FieldCipher:
    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring
        self._aeads: dict[str, Aead] = {}
        self._generation = keyring.generation

    def _aead(self, key_id: str) -> Aead:
        # A key retired by another process (``medfed keys retire``) must stop opening values
        # here too: look at the file now and then (one ``stat`` a second at most).
        self._keyring.refresh()
        if self._generation != self._keyring.generation:
            # The keyring was re-read: a key may have been retired, so forget every cached one.
            self._aeads.clear()
            self._generation = self._keyring.generation
        aead = self._aeads.get(key_id)
        if aead is None:
            key = self._keyring.key(key_id)
            try:
                aead = aead_for(key.algorithm, key.material)
            except ValueError as exc:
                raise KeyRingError(f"key '{key_id}': {exc}") from None
            self._aeads[key_id] = aead
        return aead

    @staticmethod
    def _aad(header: bytes, table: str, column: str, row_key: str) -> bytes:
        return b"%s|%s|%s|%s" % (header, table.encode(), column.encode(), row_key.encode())

    def encrypt(self, value: str, *, source: str, table: str, column: str, row_key: str) -> bytes:
        key_id = self._keyring.current_key(source).key_id
        return self.encrypt_with(value, key_id=key_id, table=table, column=column, row_key=row_key)

    def encrypt_with(
        self, value: str, *, key_id: str, table: str, column: str, row_key: str
    ) -> bytes:
        """Encrypt under a named key (re-encryption targets the key it was started for)."""
        raw_id = key_id.encode("ascii")
        header = bytes((VERSION, len(raw_id))) + raw_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead(key_id).encrypt(
            nonce, value.encode("utf-8"), self._aad(header, table, column, row_key)
        )
        return header + nonce + sealed

    def decrypt(self, blob: bytes, *, table: str, column: str, row_key: str) -> str:
        where = f"{table}.{column}[{row_key}]"
        if len(blob) < 2 or blob[0] != VERSION or len(blob) < 2 + blob[1] + NONCE_BYTES + TAG_BYTES:
            raise DecryptionError(f"{where}: not a medfed v1 ciphertext")
        end = 2 + blob[1]
        header, nonce, sealed = blob[:end], blob[end : end + NONCE_BYTES], blob[end + NONCE_BYTES :]
        try:
            key_id = header[2:].decode("ascii")
            plain = self._aead(key_id).decrypt(
                nonce, sealed, self._aad(header, table, column, row_key)
            )
            return plain.decode("utf-8")
        except (InvalidTag, UnicodeDecodeError) as exc:
            raise DecryptionError(
                f"{where}: ciphertext does not open here ({type(exc).__name__}: damaged, or "
                f"moved from another cell)"
            ) from None
        except KeyRingError as exc:
            raise DecryptionError(f"{where}: {exc}") from None

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        """The data key a ciphertext names (no key needed, and the header alone will do: key
        counting reads only that); ``DecryptionError`` if it is not a v1 header naming a key
        in printable ASCII."""
        if len(blob) < 3 or blob[0] != VERSION or blob[1] == 0 or len(blob) < 2 + blob[1]:
            raise DecryptionError("not a medfed v1 ciphertext")
        raw = blob[2 : 2 + blob[1]]
        if not raw.isascii() or not raw.decode("ascii").isprintable():
            raise DecryptionError("not a medfed v1 ciphertext")
        return raw.decode("ascii")
