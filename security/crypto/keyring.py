"""The keyring: per-source data keys, blind-index keys and the person-pseudonym key.

Stored as JSON in ``<data-dir>/keys/keyring.json`` (owner-only). Since format 2 no key is
stored in the clear: each entry holds what the :class:`KeyProvider` returned from ``wrap``
(naming its KEK) plus the key's algorithm, purpose and source. Three purposes:

``data``        field encryption, several per source, one ``current`` per source; every
                ciphertext names its key id, so old keys keep reading after a rotation.
``index``       blind indexes for equality lookups (ID number, phone); one current, and while a
                rotation is under way one ``previous`` that lookups still accept.
``person-ref``  the federation-wide person pseudonym (the API's ``personId``). It is deliberately
                a key of its own that index rotation never touches: changing it would change
                every person's id at every partner. A v1 keyring's linkage key becomes this key
                and, so existing indexes keep matching, also the index key ``bi-1``; the
                migration then starts an index rotation to a fresh ``bi-2`` at once, and
                ``medfed keys recompute`` retires ``bi-1`` (until then :meth:`warnings` says so).

A retired key keeps a tombstone (id, algorithm, when) and loses its wrapped material.

Several processes share the file (the serving gateway, ``medfed keys ...``): every change is a
locked read-modify-write, and readers notice a changed file (``refresh``), so a key created by
``medfed keys rotate`` is used by a running gateway within :data:`REFRESH_SECONDS`, and a
ciphertext under a key it has not seen yet makes it re-read the file at once.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from security.crypto.algorithms import (
    AEAD_KEY_BYTES,
    AES_256_GCM,
    HMAC_SHA256,
    MAC_KEY_BYTES,
    Profile,
)
from security.crypto.algorithms import (
    profile as profile_named,
)
from security.crypto.key_files import fsync_dir, locked, replace_file
from security.crypto.key_provider import (
    KeyProvider,
    KeyProviderError,
    LocalKeyProvider,
    RotatingKeyProvider,
    read_private_json,
    write_private_json,
)
from security.crypto.usage import USAGE_FILE, UsageError, UsageLedger, warning_for
from security.errors import MedfedError

FORMAT_V1 = "medfed-keyring/1"
FORMAT = "medfed-keyring/2"
KEY_FILE = "keyring.json"
LOCK_FILE = "keyring.lock"
V1_BACKUP = "keyring.v1-backup.json"  # the first-format file, kept until its successor opens
REFRESH_SECONDS = 1.0
DATA, INDEX, PERSON_REF = "data", "index", "person-ref"

__all__ = ["AES_256_GCM", "DataKey", "KeyRecord", "KeyRing", "KeyRingError"]


class KeyRingError(MedfedError):
    """A keyring that is missing, unreadable or unsafe; the message says what to do."""


@dataclass(frozen=True)
class DataKey:
    """An unwrapped key, in memory only. (The name is historical: index keys use it too.)"""

    key_id: str
    algorithm: str
    material: bytes = field(repr=False)
    source: str = ""
    purpose: str = DATA


@dataclass(frozen=True)
class KeyRecord:
    """What the keyring file says about a key, without its material."""

    key_id: str
    purpose: str
    algorithm: str
    source: str
    created: str
    kek: str | None  # None once retired
    retired: str | None = None


class KeyRing:
    def __init__(self, path: Path, provider: KeyProvider, profile: Profile) -> None:
        self.path = path
        self.provider = provider
        self.profile = profile
        self.records: dict[str, KeyRecord] = {}
        self.data_keys: dict[str, DataKey] = {}  # live data keys by id
        self.index_keys: dict[str, DataKey] = {}
        self.person_ref_key: DataKey | None = None
        self.current: dict[str, str] = {}  # source name -> key id
        self.index_current = ""
        self.index_previous: str | None = None
        self.index_rotated_at = 0.0  # wall-clock time of the last index rotation
        self.generation = 0  # bumped whenever the state is (re)read; caches compare it
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self.usage = UsageLedger(path.with_name(USAGE_FILE))  # encryptions per data key

    def __repr__(self) -> str:
        return (
            f"KeyRing(path={str(self.path)!r}, profile={self.profile.name!r}, "
            f"keys={sorted(self.records)!r}, provider={self.provider!r})"
        )

    # -- lookup ---------------------------------------------------------------------------------
    @property
    def linkage_key(self) -> bytes:
        """The person-pseudonym key (called the linkage key before format 2)."""
        return self._person_ref().material

    @property
    def linkage_key_id(self) -> str:
        return self._person_ref().key_id

    def _person_ref(self) -> DataKey:
        if self.person_ref_key is None:
            raise KeyRingError(f"no person-pseudonym key in {self.path}")
        return self.person_ref_key

    def key(self, key_id: str) -> DataKey:
        """A data key by id; an id not seen yet makes the keyring re-read its file once."""
        key = self.data_keys.get(key_id)
        if key is None:
            self.refresh(force=True)
            key = self.data_keys.get(key_id)
        if key is None:
            record = self.records.get(key_id)
            if record is not None and record.retired:
                raise KeyRingError(f"key '{key_id}' was retired on {record.retired}")
            raise KeyRingError(f"no key '{key_id}' in {self.path}")
        return key

    def current_key(self, source: str) -> DataKey:
        self.refresh()
        key_id = self.current.get(source)
        if key_id is None:
            raise KeyRingError(f"no data key for source '{source}' in {self.path}")
        return self.data_keys[key_id]

    def index_key(self, key_id: str) -> DataKey:
        try:
            return self.index_keys[key_id]
        except KeyError:
            raise KeyRingError(f"no blind-index key '{key_id}' in {self.path}") from None

    def lookup_index_keys(self) -> list[DataKey]:
        """The index keys a lookup must accept: the current one, then (while an index rotation
        is under way) the previous one."""
        self.refresh()
        ids = [self.index_current] + ([self.index_previous] if self.index_previous else [])
        return [self.index_key(i) for i in ids]

    def keys_of(self, source: str) -> list[KeyRecord]:
        return [r for r in self.records.values() if r.purpose == DATA and r.source == source]

    # -- changes --------------------------------------------------------------------------------
    def ensure_source(self, source: str) -> DataKey:
        """The current key of ``source``, creating (and saving) one if the source is new."""
        if source not in self.current:
            self.refresh(force=True)
        if source not in self.current:
            self._mutate(
                lambda ring: ring._add_data_key(source) if source not in ring.current else None
            )
        return self.current_key(source)

    def rotate(self, source: str, *, algorithm: str | None = None) -> DataKey:
        """A new data key for ``source``, current at once; the old ones keep decrypting."""
        self._mutate(lambda ring: ring._add_data_key(source, algorithm))
        return self.current_key(source)

    def rotate_kek(self, algorithm: str | None = None) -> str:
        """A new KEK (local provider), then every live key re-wrapped under it."""
        provider = self.provider
        if not isinstance(provider, RotatingKeyProvider):
            raise KeyRingError(
                f"the {getattr(provider, 'name', 'configured')} key provider rotates its KEK "
                f"in the key service; rotate it there, then run `medfed keys rotate --kek` again"
            )

        def change(ring: KeyRing) -> None:
            with _provider_errors():
                provider.rotate(algorithm or ring.profile.kek)

        self._mutate(change, rewrap=True)
        return provider.kek_id

    def rewrap(self) -> None:
        """Re-wrap every live key under the provider's current KEK."""
        self._mutate(lambda ring: None, rewrap=True)

    def retire(self, key_id: str) -> None:
        """Destroy a data or index key's material, keeping a tombstone. The caller has checked
        that no value needs it any more (``medfed keys retire`` counts first)."""

        def change(ring: KeyRing) -> None:
            record = ring.records.get(key_id)
            if record is None or record.retired:
                raise KeyRingError(f"no live key '{key_id}' in {ring.path}")
            if record.purpose == PERSON_REF:
                raise KeyRingError(
                    f"'{key_id}' is the person-pseudonym key: retiring it would change every "
                    f"personId in the federation"
                )
            if key_id in ring.current.values() or key_id == ring.index_current:
                raise KeyRingError(f"'{key_id}' is a current key; rotate first")
            if key_id == ring.index_previous:
                ring.index_previous = None
            ring.records[key_id] = KeyRecord(
                key_id,
                record.purpose,
                record.algorithm,
                record.source,
                record.created,
                kek=None,
                retired=_now(),
            )
            ring.data_keys.pop(key_id, None)
            ring.index_keys.pop(key_id, None)

        self._mutate(change)

    def rotate_index(self, *, algorithm: str | None = None) -> DataKey:
        """A new blind-index key, current at once; the old one stays ``previous`` (accepted by
        lookups) until :meth:`finish_index_rotation` after ``medfed keys recompute``."""

        def change(ring: KeyRing) -> None:
            if ring.index_previous:
                raise KeyRingError(
                    f"an index rotation from '{ring.index_previous}' is still under way; run "
                    f"`medfed keys recompute` to finish it first"
                )
            ring.index_previous = ring.index_current
            ring.index_current = ring._add_key(INDEX, "bi", algorithm or ring.profile.index).key_id
            ring.index_rotated_at = time.time()

        self._mutate(change)
        return self.index_key(self.index_current)

    def finish_index_rotation(self) -> str | None:
        """Stop accepting the previous index key and retire it; returns its id."""
        previous = self.index_previous
        if previous:
            self.retire(previous)
        return previous

    # -- persistence ----------------------------------------------------------------------------
    @classmethod
    def location(cls, data_dir: Path) -> Path:
        return Path(data_dir) / "keys" / KEY_FILE

    @classmethod
    def is_v1(cls, data_dir: Path) -> bool:
        """Whether the keyring is still format 1 (plain keys, wrapped on the next load)."""
        path = cls.location(data_dir)
        return (
            path.exists()
            and read_private_json(path, "keyring", KeyRingError).get("format") == FORMAT_V1
        )

    @classmethod
    def _provider_for(
        cls, data_dir: Path, provider: KeyProvider | None, *, create: bool, chosen: Profile
    ) -> KeyProvider:
        if provider is not None:
            return provider
        with _provider_errors():
            return LocalKeyProvider(
                LocalKeyProvider.location(data_dir), create=create, algorithm=chosen.kek
            )

    @classmethod
    def create(
        cls,
        data_dir: Path,
        *,
        profile: str | None = None,
        provider: KeyProvider | None = None,
        exist_ok: bool = False,
    ) -> KeyRing:
        """A new keyring; with ``exist_ok`` a keyring another process created meanwhile (on a
        start-up race) is opened instead of refused."""
        path = cls.location(data_dir)
        if path.exists() and not exist_ok:
            raise KeyRingError(f"{path} exists already; refusing to overwrite keys")
        chosen = _profile(profile)
        # The provider makes its KEK file exclusively and re-reads the winner's, so racing
        # processes all wrap under one KEK.
        ring = cls(path, cls._provider_for(data_dir, provider, create=True, chosen=chosen), chosen)
        with ring._locked():
            if path.exists():
                if not exist_ok:
                    raise KeyRingError(f"{path} exists already; refusing to overwrite keys")
            else:
                ring.person_ref_key = ring._add_key(PERSON_REF, "lk", chosen.index)
                ring.index_current = ring._add_key(INDEX, "bi", chosen.index).key_id
                ring._write()
        if exist_ok and cls.is_v1(data_dir):
            return cls.load(data_dir, profile=profile, provider=ring.provider)
        ring.refresh(force=True)
        return ring

    @classmethod
    def load(
        cls, data_dir: Path, *, profile: str | None = None, provider: KeyProvider | None = None
    ) -> KeyRing:
        path = cls.location(data_dir)
        raw = read_private_json(path, "keyring", KeyRingError)
        if raw.get("format") == FORMAT_V1 or path.with_name(V1_BACKUP).exists():
            return cls._migrate_v1(data_dir, profile, provider)
        chosen = _profile(profile or raw.get("profile"))
        ring = cls(path, cls._provider_for(data_dir, provider, create=False, chosen=chosen), chosen)
        ring.refresh(force=True)
        return ring

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        create: bool,
        profile: str | None = None,
        provider: KeyProvider | None = None,
    ) -> KeyRing:
        if cls.location(data_dir).exists() or not create:
            return cls.load(data_dir, profile=profile, provider=provider)
        return cls.create(data_dir, profile=profile, provider=provider, exist_ok=True)

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the file if another process changed it; True if it did. Cheap: one ``stat``
        at most every :data:`REFRESH_SECONDS` unless forced."""
        now = time.monotonic()
        if not force and now - self._checked < REFRESH_SECONDS:
            return False
        self._checked = now
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise KeyRingError(f"the keyring {self.path} does not exist") from None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return False
        self._read()
        self._stamp = stamp
        return True

    def save(self) -> None:
        with self._locked():
            self._write()

    # -- internals ------------------------------------------------------------------------------
    def _add_key(self, purpose: str, prefix: str, algorithm: str, source: str = "") -> DataKey:
        sizes = MAC_KEY_BYTES if purpose != DATA else AEAD_KEY_BYTES
        if algorithm not in sizes:
            raise KeyRingError(f"{algorithm} is not an algorithm for {purpose} keys")
        stem = f"{prefix}-{source}-" if source else f"{prefix}-"
        taken = [
            int(k[len(stem) :])
            for k in self.records
            if k.startswith(stem) and k[len(stem) :].isdigit()
        ]
        key = DataKey(
            f"{stem}{1 + max(taken, default=0)}",
            algorithm,
            secrets.token_bytes(sizes[algorithm]),
            source,
            purpose,
        )
        self._install(key, _now(), kek="")
        return key

    def _add_data_key(self, source: str, algorithm: str | None = None) -> None:
        key = self._add_key(DATA, "dk", algorithm or self.profile.data, source)
        self.current[source] = key.key_id

    def _install(self, key: DataKey, created: str, kek: str) -> None:
        self.records[key.key_id] = KeyRecord(
            key.key_id, key.purpose, key.algorithm, key.source, created, kek
        )
        if key.purpose == DATA:
            self.data_keys[key.key_id] = key
        elif key.purpose == INDEX:
            self.index_keys[key.key_id] = key
        else:
            self.person_ref_key = key

    def _locked(self) -> AbstractContextManager[None]:
        return locked(self.path.with_name(LOCK_FILE))

    def _mutate(self, change: Callable[[KeyRing], None], *, rewrap: bool = False) -> None:
        """Locked read-modify-write, so two processes changing keys never lose one another's
        key (losing a key loses every value under it)."""
        with self._locked():
            if self.path.exists():
                self._read()
            change(self)
            self._write(rewrap=rewrap)
        self._checked = 0.0
        self.refresh(force=True)

    def _read(self) -> None:
        raw = read_private_json(self.path, "keyring", KeyRingError)
        if raw.get("format") != FORMAT:
            raise KeyRingError(f"{self.path} is not a {FORMAT} file")
        records: dict[str, KeyRecord] = {}
        keys: dict[str, tuple[DataKey, str]] = {}
        try:
            for key_id, entry in raw["keys"].items():
                records[key_id] = KeyRecord(
                    key_id,
                    entry["purpose"],
                    entry["alg"],
                    entry.get("source", ""),
                    entry["created"],
                    entry.get("kek"),
                    entry.get("retired"),
                )
                if not entry.get("retired"):
                    wrapped = base64.b64decode(entry["wrapped"], validate=True)
                    keys[key_id] = (self._unwrap(records[key_id], wrapped), entry["created"])
            current = {str(s): str(k) for s, k in raw["current"].items()}
            index_current, index_previous = raw["index"]["current"], raw["index"]["previous"]
            rotated_at = float(raw["index"].get("rotated_at", 0.0))
            person_ref = raw["person_ref"]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KeyRingError(
                f"the keyring {self.path} is damaged ({type(exc).__name__})"
            ) from None
        for name, key_id in [
            *current.items(),
            ("index", index_current),
            ("index (previous)", index_previous),
            ("person", person_ref),
        ]:
            if key_id is not None and key_id not in keys:
                raise KeyRingError(
                    f"the keyring {self.path} names '{key_id}' for {name} "
                    f"but holds no live key of that id"
                )
        self.records, self.data_keys, self.index_keys = records, {}, {}
        for key, created in keys.values():
            self._install(key, created, records[key.key_id].kek or "")
        self.current, self.index_current, self.index_previous = (
            current,
            index_current,
            index_previous,
        )
        self.index_rotated_at = rotated_at
        self.generation += 1

    def _unwrap(self, record: KeyRecord, wrapped: bytes) -> DataKey:
        with _provider_errors():
            payload = self.provider.unwrap(record.key_id, wrapped)
        # The algorithm travels inside the wrapped payload, so editing "alg" in the file is
        # detected instead of silently using the key with another primitive.
        algorithm, sep, material = payload.partition(b"\x00")
        if not sep or algorithm.decode("ascii", "replace") != record.algorithm:
            raise KeyRingError(
                f"key '{record.key_id}' in {self.path} claims algorithm {record.algorithm} but "
                f"was wrapped as another; the keyring file was altered"
            )
        return DataKey(record.key_id, record.algorithm, material, record.source, record.purpose)

    def _write(self, *, rewrap: bool = False) -> None:
        live = self._live()
        old = _entries_of(self.path) if self.path.exists() else {}
        entries = {}
        for key_id, record in self.records.items():
            entry: dict[str, str] = {
                "purpose": record.purpose,
                "alg": record.algorithm,
                "created": record.created,
            }
            if record.source:
                entry["source"] = record.source
            if record.retired:
                entry["retired"] = record.retired
            elif not rewrap and key_id in old and old[key_id].get("wrapped"):
                entry["kek"], entry["wrapped"] = old[key_id]["kek"], old[key_id]["wrapped"]
            else:
                key = live[key_id]
                with _provider_errors():
                    wrapped = self.provider.wrap(
                        key_id, key.algorithm.encode("ascii") + b"\x00" + key.material
                    )
                    entry["kek"] = self.provider.kek_of(wrapped)
                entry["wrapped"] = base64.b64encode(wrapped).decode("ascii")
            entries[key_id] = entry
        write_private_json(
            self.path,
            {
                "format": FORMAT,
                "profile": self.profile.name,
                "kek_provider": getattr(self.provider, "name", type(self.provider).__name__),
                "person_ref": self._person_ref().key_id,
                "index": {
                    "current": self.index_current,
                    "previous": self.index_previous,
                    "rotated_at": self.index_rotated_at,
                },
                "current": self.current,
                "keys": entries,
            },
        )

    @classmethod
    def _migrate_v1(
        cls, data_dir: Path, profile: str | None, provider: KeyProvider | None
    ) -> KeyRing:
        """Wrap a format-1 keyring's plain keys under a KEK and rewrite it as format 2.

        The v1 linkage key becomes the person-pseudonym key and, with the same material, the
        first index key: every personId and every stored blind index stays valid.

        Under the keyring lock, so of several processes starting together exactly one
        migrates and the others open its result. The first-format file is copied to
        :data:`V1_BACKUP` before anything is replaced and removed only once the new file,
        reopened from disk under a fresh provider, yields every key of the copy; a crash in
        between leaves the copy, and the next start checks again (or migrates again from it).
        """
        path = cls.location(data_dir)
        backup = path.with_name(V1_BACKUP)
        chosen = _profile(profile)
        ring = cls(path, cls._provider_for(data_dir, provider, create=True, chosen=chosen), chosen)
        with ring._locked():
            raw = read_private_json(path, "keyring", KeyRingError)
            if raw.get("format") == FORMAT_V1:
                replace_file(backup, path.read_bytes())
                v1 = raw
            elif backup.exists():
                v1 = read_private_json(backup, "first-format keyring copy", KeyRingError)
            else:  # another process migrated it while we waited
                v1 = None
            if v1 is not None:
                expected = ring._install_v1(v1)
                # bi-1 has the personId key's bytes: a leak of one is a leak of the other,
                # and rotating it would protect nothing. Start an index rotation to a key of
                # its own now; `medfed keys recompute` finishes it and retires bi-1.
                ring.index_previous, ring.index_rotated_at = "bi-1", time.time()
                ring.index_current = ring._add_key(INDEX, "bi", HMAC_SHA256).key_id
                if raw.get("format") == FORMAT_V1 or not ring._reopens_with(expected):
                    ring._write(rewrap=True)
                    if not ring._reopens_with(expected):
                        replace_file(path, backup.read_bytes())
                        raise KeyRingError(
                            f"migrating {path} to {FORMAT} failed: the new file did not reopen "
                            f"with every key; the first-format keyring was put back"
                        )
                backup.unlink()
                fsync_dir(path.parent)
        ring.refresh(force=True)
        return ring

    def _install_v1(self, raw: dict) -> dict[str, tuple[str, bytes]]:
        """Install a format-1 keyring's keys; return them by id as (algorithm, material)."""
        try:
            owner = {key_id: source for source, key_id in raw["current"].items()}
            linkage_id, linkage = raw["linkage"]["id"], base64.b64decode(raw["linkage"]["key"])
            created = _now()
            self._install(DataKey(linkage_id, HMAC_SHA256, linkage, "", PERSON_REF), created, "")
            self._install(DataKey("bi-1", HMAC_SHA256, linkage, "", INDEX), created, "")
            self.index_current = "bi-1"
            for key_id, entry in raw["data_keys"].items():
                source = owner.get(key_id) or key_id.removeprefix("dk-").rsplit("-", 1)[0]
                self._install(
                    DataKey(key_id, entry["alg"], base64.b64decode(entry["key"]), source, DATA),
                    created,
                    "",
                )
            self.current = dict(raw["current"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KeyRingError(
                f"the keyring {self.path} is damaged ({type(exc).__name__})"
            ) from None
        return {k: (v.algorithm, v.material) for k, v in self._live().items()}

    def _reopens_with(self, expected: dict[str, tuple[str, bytes]]) -> bool:
        """Whether the file on disk, read under a fresh provider, holds ``expected``."""
        fresh = self.provider
        if isinstance(fresh, LocalKeyProvider):
            fresh = LocalKeyProvider(fresh.path)
        check = KeyRing(self.path, fresh, self.profile)
        try:
            check._read()
        except KeyRingError:
            return False
        found = {k: (v.algorithm, v.material) for k, v in check._live().items()}
        return all(found.get(k) == v for k, v in expected.items())

    def _live(self) -> dict[str, DataKey]:
        live = {**self.data_keys, **self.index_keys}
        if self.person_ref_key is not None:
            live[self.person_ref_key.key_id] = self.person_ref_key
        return live

    def shared_index_keys(self) -> list[str]:
        """Live index keys whose material is the person-pseudonym key's (a first-format
        keyring's ``bi-1`` until ``medfed keys recompute`` retires it)."""
        person = self.person_ref_key
        if person is None:
            return []
        return [
            k.key_id
            for k in self.index_keys.values()
            if hmac.compare_digest(k.material, person.material)
        ]

    def warnings(self) -> list[str]:
        """What an operator must act on, one line each (``medfed keys status``, start-up log)."""
        found = [
            f"blind-index key {key_id} is the personId key's material (a first-format "
            f"keyring): run `medfed keys recompute` so lookups use a key of their own"
            for key_id in self.shared_index_keys()
        ]
        try:
            counts = self.usage.counts()
        except UsageError as exc:
            return [*found, str(exc)]
        for key_id in self.data_keys:
            if (warning := warning_for(key_id, counts.get(key_id, 0))) is not None:
                found.append(warning)
        return found

    def retire_kek(self, kek_id: str) -> None:
        """Destroy a KEK that wraps no key any more. Under the keyring lock, so a KEK that a
        concurrent ``rotate --kek`` just made current, or that a key was re-wrapped under,
        is never dropped."""
        provider = self.provider
        if not isinstance(provider, RotatingKeyProvider):
            raise KeyRingError("this key provider's KEKs are retired in the key service")
        with self._locked():
            self._read()
            users = [r.key_id for r in self.records.values() if r.kek == kek_id]
            if users:
                raise KeyRingError(
                    f"KEK {kek_id} still wraps {len(users)} keys; run `medfed keys rotate "
                    f"--kek` first"
                )
            with _provider_errors():
                provider.retire(kek_id)


@contextmanager
def _provider_errors() -> Iterator[None]:
    try:
        yield
    except KeyProviderError as exc:
        raise KeyRingError(str(exc)) from None


def _entries_of(path: Path) -> dict:
    raw = read_private_json(path, "keyring", KeyRingError)
    return raw.get("keys", {}) if raw.get("format") == FORMAT else {}


def _profile(name: str | None) -> Profile:
    try:
        return profile_named(name)
    except ValueError as exc:
        raise KeyRingError(str(exc)) from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
