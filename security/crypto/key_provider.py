"""Key-encryption keys (KEKs): who wraps the data keys, and the local default.

The keyring never stores a data key in the clear: it stores what a :class:`KeyProvider`
returned from ``wrap``. A provider must

* name the KEK in what ``wrap`` returns, so ``unwrap`` works after the KEK has rotated;
* authenticate the wrapped key together with the data key's id (its "context"), so a wrapped
  key that was altered, or copied under another id, fails to unwrap instead of yielding a
  wrong key;
* never let KEK material reach a log, an exception message, a ``repr`` or a database.

A cloud KMS or HSM provider implements the same three members with the service's own calls,
for example AWS KMS ``Encrypt``/``Decrypt`` (or Alibaba Cloud KMS, or a PKCS#11 HSM's
``C_WrapKey``/``C_UnwrapKey``) with ``{"medfed-key-id": key_id}`` as the encryption context
and the KMS key ARN (or HSM handle label) as ``kek_id``; the service keeps the KEK, and
``unwrap`` failures surface as :class:`KeyProviderError`. Rotating such a KEK happens in the
service; ``medfed keys rotate --kek`` then only re-wraps (see :class:`RotatingKeyProvider`).

:class:`LocalKeyProvider` keeps its KEKs in an owner-only JSON file *beside but apart from*
the keyring (``<data-dir>/keys/kek.json`` by default), so the two can live on different
volumes or backups: a copy of the keyring alone reveals no data key.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag

from security.crypto.algorithms import AEAD_KEY_BYTES, AES_256_GCM, aead_for
from security.crypto.key_files import create_private_once, locked, replace_file
from security.errors import MedfedError

KEK_FORMAT = "medfed-kek/1"
KEK_FILE = "kek.json"
WRAP_VERSION = 1
NONCE_BYTES = 12


class KeyProviderError(MedfedError):
    """A KEK that is missing, or a wrapped key that does not open under it."""


@runtime_checkable
class KeyProvider(Protocol):
    @property
    def kek_id(self) -> str:
        """The KEK that ``wrap`` uses now."""
        ...

    def wrap(self, key_id: str, dek: bytes) -> bytes: ...

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes: ...

    def kek_of(self, wrapped: bytes) -> str:
        """The id of the KEK that wrapped ``wrapped`` (read from its header)."""
        ...


@runtime_checkable
class RotatingKeyProvider(KeyProvider, Protocol):
    """A provider that can make a new KEK current and destroy an unused old one."""

    def rotate(self, algorithm: str | None = None) -> str: ...

    def retire(self, kek_id: str) -> None: ...

    def kek_ids(self) -> list[str]: ...


def private_json(payload: dict) -> bytes:
    return json.dumps(payload, indent=2).encode("utf-8")


def write_private_json(path: Path, payload: dict) -> None:
    """Write ``payload`` owner-only, beside under a unique name then renamed, and the
    directory fsynced: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    replace_file(path, private_json(payload))


def read_private_json(path: Path, what: str, error: type[Exception]) -> dict:
    """Read an owner-only JSON file; refuse one that others may read."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"the {what} {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise error(
            f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise error(f"cannot read the {what} {path}: {type(exc).__name__}") from None
    if not isinstance(raw, dict):
        raise error(f"the {what} {path} is damaged")
    return raw


class LocalKeyProvider:
    """KEKs in an owner-only file; wrapping is AES-256-GCM or SM4-GCM per KEK.

    Wrapped layout: ``0x01 | len(kek_id) | kek_id | nonce (12) | ciphertext + tag`` with the
    header and the data key's id as associated data.

    Several processes may start at once on a data directory without a KEK file: each makes a
    candidate, the first ``link()`` wins (:func:`create_private_once`) and every process then
    reads the file back, so all of them wrap under the winner's KEK. ``rotate`` and ``retire``
    are read-modify-writes under ``<kek file>.lock``.
    """

    name = "local"

    def __init__(self, path: Path, *, create: bool = False, algorithm: str = AES_256_GCM):
        self.path = Path(path)
        self._keks: dict[str, tuple[str, bytes]] = {}
        self._current = ""
        if not self.path.exists() and create:
            self._add(algorithm)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.path.parent, 0o700)
            create_private_once(self.path, lambda: private_json(self._payload()))
            self._keks, self._current = {}, ""  # ours or not, what counts is the file
        if self.path.exists():
            self._load()
        else:
            raise KeyProviderError(
                f"the key-encryption key file {self.path} is missing; restore it from its "
                f"backup (without it no data key in the keyring can be opened)"
            )

    @classmethod
    def location(cls, data_dir: Path) -> Path:
        return Path(data_dir) / "keys" / KEK_FILE

    def __repr__(self) -> str:
        return f"LocalKeyProvider(path={str(self.path)!r}, kek_id={self._current!r})"

    # -- the KeyProvider protocol ---------------------------------------------------------------
    @property
    def kek_id(self) -> str:
        return self._current

    def wrap(self, key_id: str, dek: bytes) -> bytes:
        kek_id = self._current.encode("ascii")
        header = bytes((WRAP_VERSION, len(kek_id))) + kek_id
        nonce = os.urandom(NONCE_BYTES)
        return (
            header + nonce + self._aead(self._current).encrypt(nonce, dek, _context(header, key_id))
        )

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        kek_id = self.kek_of(wrapped)
        header_len = 2 + len(kek_id)
        nonce = wrapped[header_len : header_len + NONCE_BYTES]
        try:
            return self._aead(kek_id).decrypt(
                nonce,
                wrapped[header_len + NONCE_BYTES :],
                _context(wrapped[:header_len], key_id),
            )
        except InvalidTag:
            raise KeyProviderError(
                f"the wrapped data key '{key_id}' does not open under KEK '{kek_id}': it was "
                f"altered, or copied from another key or keyring"
            ) from None

    def kek_of(self, wrapped: bytes) -> str:
        if len(wrapped) < 2 or wrapped[0] != WRAP_VERSION or len(wrapped) < 2 + wrapped[1]:
            raise KeyProviderError("a wrapped data key is damaged (bad header)")
        try:
            return wrapped[2 : 2 + wrapped[1]].decode("ascii")
        except UnicodeDecodeError:
            raise KeyProviderError("a wrapped data key is damaged (bad KEK id)") from None

    # -- rotation -------------------------------------------------------------------------------
    def rotate(self, algorithm: str | None = None) -> str:
        with self._locked():
            self._load()  # another process may have rotated since we read the file
            kek_id = self._add(algorithm or self._keks[self._current][0])
            self._save()
        return kek_id

    def retire(self, kek_id: str) -> None:
        with self._locked():
            self._load()
            if kek_id == self._current:
                raise KeyProviderError(f"KEK '{kek_id}' is current; rotate the KEK first")
            if kek_id not in self._keks:
                raise KeyProviderError(f"no KEK '{kek_id}' in {self.path}")
            del self._keks[kek_id]
            self._save()

    def kek_ids(self) -> list[str]:
        return list(self._keks)

    def algorithm_of(self, kek_id: str) -> str:
        return self._keks[kek_id][0]

    # -- internals ------------------------------------------------------------------------------
    def _aead(self, kek_id: str):
        if kek_id not in self._keks:
            self._load()  # another process may have rotated the KEK since we read the file
        try:
            algorithm, material = self._keks[kek_id]
        except KeyError:
            raise KeyProviderError(
                f"KEK '{kek_id}' is not in {self.path}; restore the KEK file that wrapped "
                f"this keyring"
            ) from None
        return aead_for(algorithm, material)

    def _add(self, algorithm: str) -> str:
        number = 1 + max((int(k.rsplit("-", 1)[1]) for k in self._keks), default=0)
        kek_id = f"kek-{number}"
        self._keks[kek_id] = (algorithm, secrets.token_bytes(AEAD_KEY_BYTES[algorithm]))
        self._current = kek_id
        return kek_id

    def _load(self) -> None:
        raw = read_private_json(self.path, "key-encryption key file", KeyProviderError)
        if raw.get("format") != KEK_FORMAT:
            raise KeyProviderError(f"{self.path} is not a {KEK_FORMAT} file")
        try:
            keks = {
                kid: (entry["alg"], base64.b64decode(entry["key"], validate=True))
                for kid, entry in raw["keys"].items()
            }
            current = raw["current"]
            aead_for(*keks[current])  # a KEK of the wrong length fails here, not mid-write
        except (KeyError, TypeError, ValueError, AttributeError):
            raise KeyProviderError(f"the key-encryption key file {self.path} is damaged") from None
        self._keks, self._current = keks, current

    def _locked(self):
        return locked(self.path.with_name(self.path.name + ".lock"))

    def _payload(self) -> dict:
        return {
            "format": KEK_FORMAT,
            "current": self._current,
            "keys": {
                kid: {"alg": alg, "key": base64.b64encode(material).decode("ascii")}
                for kid, (alg, material) in self._keks.items()
            },
        }

    def _save(self) -> None:
        write_private_json(self.path, self._payload())


def _context(header: bytes, key_id: str) -> bytes:
    return header + b"|medfed-dek|" + key_id.encode("utf-8")
