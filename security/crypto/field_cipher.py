"""Authenticated encryption of single field values, bound to their source, table, column and row.

Ciphertext layout (the same shape in both versions)::

    version | len(key_id) (1 byte) | key_id (ascii) | nonce (12 bytes) | ciphertext + tag (16)

The key id names the data key, and the key records its algorithm (AES-256-GCM in the standard
profile, SM4-GCM in the national one) and the source it belongs to, so one database may hold
values of both profiles while it is re-encrypted.

Associated data:

* **version 2** (every value written now): ``medfed-field/2`` then the header, the source, the
  table, the column and the row key, each prefixed by its length (4 bytes, big-endian), so no
  two different addresses can ever give the same bytes;
* **version 1** (read only, until ``medfed keys reencrypt`` moves it to version 2): the header
  and ``|table|column|row_key``, without the source.

Decryption takes the source that holds the value and refuses a ciphertext whose key belongs to
another source, in both versions: row keys are institution-local numbers that collide across
institutions, so a value copied from hospital A's database into a row of hospital B with the
same key must not open there (nor be re-encrypted under B's key).
"""

from __future__ import annotations

import logging
import os

from cryptography.exceptions import InvalidTag

from security.crypto import usage
from security.crypto.algorithms import TAG_BYTES, Aead, aead_for
from security.crypto.keyring import KeyRing, KeyRingError
from security.errors import MedfedError

V1, V2 = 1, 2
VERSION = V2  # what encrypt writes
VERSIONS = (V1, V2)
NONCE_BYTES = 12
_V2_LABEL = b"medfed-field/2"
_PREFIX_CACHE = 4096  # (key, source, table, column) combinations: a few dozen in practice
log = logging.getLogger("medfed.crypto")


class _OtherSource(Exception):
    """The key belongs to another source (turned into a DecryptionError naming the cell)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def message(self, where: str, source: str) -> str:
        return (
            f"{where}: the value is under a key of source '{self.owner}', not of '{source}' "
            f"(copied from another source's database?)"
        )


def _lp(part: bytes) -> bytes:
    return len(part).to_bytes(4, "big") + part


class DecryptionError(MedfedError):
    """A ciphertext that is damaged, moved to another cell, or under an unknown key."""


class FieldCipher:
    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring
        self._aeads: dict[str, tuple[Aead, str]] = {}  # key id -> (AEAD, its source)
        self._generation = keyring.generation
        self._budget: dict[str, int] = {}  # encryptions reserved in the usage ledger, left
        self._prefixes: dict[tuple[bytes, str, str, str], bytes] = {}  # v2 AAD prefixes

    def _reserve(self, key_id: str) -> int:
        """Reserve the next block of encryptions under ``key_id`` (``security.crypto.usage``);
        refuse once the key has reached the AES-GCM limit."""
        try:
            before = self._keyring.usage.reserve(key_id, usage.BLOCK)
        except usage.UsageError as exc:
            raise KeyRingError(str(exc)) from None
        if before + usage.BLOCK > usage.LIMIT:
            raise KeyRingError(
                f"data key {key_id} has reached the AES-GCM limit of {usage.LIMIT:,} "
                f"encryptions; refusing to encrypt under it: run `medfed keys rotate`"
            )
        if (warning := usage.warning_for(key_id, before + usage.BLOCK)) is not None:
            log.warning(warning)
        return usage.BLOCK

    def _aead(self, key_id: str, source: str) -> Aead:
        """The AEAD of ``key_id``, refused unless the key belongs to ``source``."""
        # A key retired by another process (``medfed keys retire``) must stop opening values
        # here too: look at the file now and then (one ``stat`` a second at most).
        self._keyring.refresh()
        if self._generation != self._keyring.generation:
            # The keyring was re-read: a key may have been retired, so forget every cached one.
            self._aeads.clear()
            self._generation = self._keyring.generation
        cached = self._aeads.get(key_id)
        if cached is None:
            key = self._keyring.key(key_id)
            try:
                cached = self._aeads[key_id] = (aead_for(key.algorithm, key.material), key.source)
            except ValueError as exc:
                raise KeyRingError(f"key '{key_id}': {exc}") from None
        if cached[1] != source:
            raise _OtherSource(cached[1])
        return cached[0]

    def _aad(
        self, version: int, header: bytes, source: str, table: str, column: str, row_key: str
    ) -> bytes:
        if version == V1:
            return b"%s|%s|%s|%s" % (header, table.encode(), column.encode(), row_key.encode())
        # Everything but the row key repeats for every row of a column: build it once.
        prefix = self._prefixes.get((header, source, table, column))
        if prefix is None:
            if len(self._prefixes) > _PREFIX_CACHE:
                self._prefixes.clear()
            prefix = _V2_LABEL + b"".join(
                _lp(p) for p in (header, source.encode(), table.encode(), column.encode())
            )
            self._prefixes[(header, source, table, column)] = prefix
        return prefix + _lp(row_key.encode())

    def encrypt(self, value: str, *, source: str, table: str, column: str, row_key: str) -> bytes:
        key_id = self._keyring.current_key(source).key_id
        return self.encrypt_with(
            value, key_id=key_id, source=source, table=table, column=column, row_key=row_key
        )

    def encrypt_with(
        self, value: str, *, key_id: str, source: str, table: str, column: str, row_key: str
    ) -> bytes:
        """Encrypt under a named key of ``source`` (re-encryption targets the key it was
        started for)."""
        try:
            aead = self._aead(key_id, source)
        except _OtherSource as exc:
            raise DecryptionError(exc.message(f"{table}.{column}[{row_key}]", source)) from None
        left = self._budget.get(key_id, 0)
        if left <= 0:
            left = self._reserve(key_id)
        self._budget[key_id] = left - 1
        raw_id = key_id.encode("ascii")
        header = bytes((VERSION, len(raw_id))) + raw_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = aead.encrypt(
            nonce, value.encode("utf-8"), self._aad(VERSION, header, source, table, column, row_key)
        )
        return header + nonce + sealed

    def decrypt(self, blob: bytes, *, source: str, table: str, column: str, row_key: str) -> str:
        if (
            len(blob) < 2
            or blob[0] not in VERSIONS
            or len(blob) < 2 + blob[1] + NONCE_BYTES + TAG_BYTES
        ):
            raise DecryptionError(f"{table}.{column}[{row_key}]: not a medfed ciphertext")
        end = 2 + blob[1]
        header = blob[:end]
        try:
            aead = self._aead(header[2:].decode("ascii"), source)
            aad = self._aad(blob[0], header, source, table, column, row_key)
            return aead.decrypt(
                blob[end : end + NONCE_BYTES], blob[end + NONCE_BYTES :], aad
            ).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError) as exc:
            raise DecryptionError(
                f"{table}.{column}[{row_key}]: ciphertext does not open here "
                f"({type(exc).__name__}: damaged, or moved from another cell)"
            ) from None
        except _OtherSource as exc:
            raise DecryptionError(exc.message(f"{table}.{column}[{row_key}]", source)) from None
        except KeyRingError as exc:
            raise DecryptionError(f"{table}.{column}[{row_key}]: {exc}") from None

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        """The data key a ciphertext names (no key needed, and the header alone will do: key
        counting reads only that); ``DecryptionError`` if it is not a v1 or v2 header naming a
        key in printable ASCII."""
        if len(blob) < 3 or blob[0] not in VERSIONS or blob[1] == 0 or len(blob) < 2 + blob[1]:
            raise DecryptionError("not a medfed ciphertext")
        raw = blob[2 : 2 + blob[1]]
        if not raw.isascii() or not raw.decode("ascii").isprintable():
            raise DecryptionError("not a medfed ciphertext")
        return raw.decode("ascii")

    @staticmethod
    def version_of(blob: bytes) -> int:
        """The ciphertext format version (1 or 2); ``DecryptionError`` if malformed."""
        FieldCipher.key_id_of(blob)
        return blob[0]
