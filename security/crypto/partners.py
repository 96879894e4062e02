"""The partner key registry: which public keys each organisation may have responses sealed to.

A TOML file (default ``<data-dir>/keys/partners.toml``, ``[sealing] partners_file``)::

    [[keys]]
    org = "H33010600001"           # the organisation code in the caller's token
    kid = "h33010600001-x25519-1a2b3c4d"
    kem = "X25519"                 # or "MLKEM768-X25519"
    public = "<base64>"            # or public_file = "path/to/key.pub" (base64 text)

Key ids are unique across the file: the ``X-Seal-To`` header carries only the kid, and the
gateway then checks that the kid belongs to the caller's organisation. The file is re-read
when it changes, so a newly registered key works without a restart; a broken file refuses
every sealing request (fail closed) with a one-line error naming the key.
"""

from __future__ import annotations

import base64
import os
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from security.crypto import hpke_seal
from security.crypto.hpke_seal import KEM_NAMES, KID_PATTERN, PublicKey, SealingError
from security.errors import MedfedError

DEFAULT_FILE = "keys/partners.toml"
_HEADER = (
    "# medfed partner public keys: a request with `X-Seal-To: <kid>` from the key's org\n"
    "# gets its identifying and level-4+ values sealed to that key (docs/keys.md).\n"
    "# Managed by `medfed partner`.\n"
)


class PartnerKeyError(MedfedError, ValueError):
    """The registry file (or one key in it) is unusable."""


@dataclass(frozen=True)
class PartnerKey:
    org: str
    kid: str
    kem: str
    public_key: PublicKey

    @property
    def suite(self) -> str:
        return hpke_seal.suite_name(self.kem)


def partners_file(data_dir: Path, chosen: str = DEFAULT_FILE) -> Path:
    """``[sealing] partners_file``; relative paths are under the data directory."""
    path = Path(chosen)
    return path if path.is_absolute() else data_dir / path


def parse(raw: dict[str, Any], path: Path) -> dict[str, PartnerKey]:
    keys: dict[str, PartnerKey] = {}
    entries = raw.get("keys", [])
    if not isinstance(entries, list):
        raise PartnerKeyError(f"{path}: 'keys' must be an array of tables ([[keys]])")
    for index, entry in enumerate(entries):
        kid = entry.get("kid") if isinstance(entry, dict) else None
        name = f"{path}: key {kid!r}" if isinstance(kid, str) else f"{path}: keys[{index}]"
        if not isinstance(kid, str) or not KID_PATTERN.match(kid):
            raise PartnerKeyError(f"{name}: kid must be 1-64 of A-Z a-z 0-9 . _ -")
        if kid in keys:
            raise PartnerKeyError(f"{name}: kid is listed twice")
        org, kem = entry.get("org"), entry.get("kem")
        if not isinstance(org, str) or not org:
            raise PartnerKeyError(f"{name}: org is missing")
        if kem not in KEM_NAMES:
            raise PartnerKeyError(f"{name}: kem {kem!r} is not one of {', '.join(KEM_NAMES)}")
        text = _public_text(entry, path, name)
        try:
            public = hpke_seal.public_from_bytes(kem, hpke_seal.b64decode(text, "public key"))
        except SealingError as exc:
            raise PartnerKeyError(f"{name}: {exc}") from None
        keys[kid] = PartnerKey(org, kid, kem, public)
    return keys


def _public_text(entry: dict[str, Any], path: Path, name: str) -> str:
    if isinstance(entry.get("public"), str):
        return entry["public"]
    if isinstance(entry.get("public_file"), str):
        file = Path(entry["public_file"])
        file = file if file.is_absolute() else path.parent / file
        try:
            return file.read_text()
        except OSError as exc:
            raise PartnerKeyError(f"{name}: cannot read {file}: {exc.strerror}") from None
    raise PartnerKeyError(f'{name}: needs public = "<base64>" or public_file = "path"')


def load(path: Path) -> dict[str, PartnerKey]:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise PartnerKeyError(f"{path}: not valid TOML: {exc}") from None
    return parse(raw, path)


class PartnerRegistry:
    """The registry file, re-read when its modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, PartnerKey] = {}
        self._error: PartnerKeyError | None = None

    def _current(self) -> dict[str, PartnerKey]:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, -1)
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._keys, self._error = load(self.path), None
                except PartnerKeyError as exc:
                    self._keys, self._error = {}, exc
                self._stamp = stamp
            if self._error is not None:
                raise self._error
            return self._keys

    def get(self, kid: str) -> PartnerKey | None:
        return self._current().get(kid)

    def for_org(self, org: str) -> list[PartnerKey]:
        return [k for k in self._current().values() if k.org == org]


def register(path: Path, org: str, kid: str, kem: str, public_raw: bytes) -> None:
    """Append a key to the registry file (created if missing); refuses a kid already used."""
    existing = load(path)
    if kid in existing:
        raise PartnerKeyError(f"{path}: key {kid!r} is registered already")
    if not KID_PATTERN.match(kid):
        raise PartnerKeyError(f"key {kid!r}: kid must be 1-64 of A-Z a-z 0-9 . _ -")
    if '"' in org or "\\" in org or "\n" in org:
        raise PartnerKeyError(f"key {kid!r}: org {org!r} has characters not allowed")

    block = (
        f'\n[[keys]]\norg = "{org}"\nkid = "{kid}"\nkem = "{kem}"\n'
        f'public = "{base64.b64encode(public_raw).decode()}"\n'
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not path.exists()
    with path.open("a", encoding="utf-8") as fh:
        if fresh:
            fh.write(_HEADER)
        fh.write(block)
