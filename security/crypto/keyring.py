"""The keyring: per-source data keys and the federation-wide linkage key.

Stored as JSON in ``<data-dir>/keys/keyring.json`` with owner-only permissions. Every key has
an id that is written into each ciphertext, so later issues can add envelope wrapping and
rotation (several keys per source, one current) without changing the ciphertext format.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "medfed-keyring/1"
KEY_FILE = "keyring.json"
AES_256_GCM = "AES-256-GCM"


class KeyRingError(Exception):
    """A keyring that is missing, unreadable or unsafe; the message says what to do."""


@dataclass(frozen=True)
class DataKey:
    key_id: str
    algorithm: str
    material: bytes = field(repr=False)


@dataclass
class KeyRing:
    path: Path
    linkage_key_id: str
    linkage_key: bytes = field(repr=False)
    data_keys: dict[str, DataKey] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)  # source name -> key id

    # -- lookup ---------------------------------------------------------------------------------
    def key(self, key_id: str) -> DataKey:
        try:
            return self.data_keys[key_id]
        except KeyError:
            raise KeyRingError(f"no key '{key_id}' in {self.path}") from None

    def current_key(self, source: str) -> DataKey:
        key_id = self.current.get(source)
        if key_id is None:
            raise KeyRingError(f"no data key for source '{source}' in {self.path}")
        return self.data_keys[key_id]

    def ensure_source(self, source: str) -> DataKey:
        """The current key of ``source``, creating (and saving) one if the source is new."""
        if source not in self.current:
            key = DataKey(f"dk-{source}-1", AES_256_GCM, secrets.token_bytes(32))
            self.data_keys[key.key_id] = key
            self.current[source] = key.key_id
            self.save()
        return self.current_key(source)

    # -- persistence ----------------------------------------------------------------------------
    @classmethod
    def location(cls, data_dir: Path) -> Path:
        return Path(data_dir) / "keys" / KEY_FILE

    @classmethod
    def create(cls, data_dir: Path) -> KeyRing:
        path = cls.location(data_dir)
        if path.exists():
            raise KeyRingError(f"{path} exists already; refusing to overwrite keys")
        ring = cls(path=path, linkage_key_id="lk-1", linkage_key=secrets.token_bytes(32))
        ring.save()
        return ring

    @classmethod
    def load(cls, data_dir: Path) -> KeyRing:
        path = cls.location(data_dir)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyRingError(f"the keyring {path} does not exist") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyRingError(
                f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); "
                f"run: chmod 600 {path}"
            )
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeyRingError(f"cannot read the keyring {path}: {exc}") from None
        if raw.get("format") != FORMAT:
            raise KeyRingError(f"{path} is not a {FORMAT} file")
        try:
            keys = {
                kid: DataKey(kid, entry["alg"], base64.b64decode(entry["key"]))
                for kid, entry in raw["data_keys"].items()
            }
            return cls(
                path=path,
                linkage_key_id=raw["linkage"]["id"],
                linkage_key=base64.b64decode(raw["linkage"]["key"]),
                data_keys=keys,
                current=dict(raw["current"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyRingError(f"the keyring {path} is damaged ({exc!r})") from None

    @classmethod
    def open(cls, data_dir: Path, *, create: bool) -> KeyRing:
        if cls.location(data_dir).exists() or not create:
            return cls.load(data_dir)
        return cls.create(data_dir)

    def save(self) -> None:
        payload = {
            "format": FORMAT,
            "linkage": {"id": self.linkage_key_id, "key": _b64(self.linkage_key)},
            "data_keys": {
                k.key_id: {"alg": k.algorithm, "key": _b64(k.material)}
                for k in self.data_keys.values()
            },
            "current": self.current,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        # Write beside, then rename: a crash mid-write must never leave a half keyring.
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
