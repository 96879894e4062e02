"""Start-up checks shared by the commands that touch source data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from connectors.sql.engine import sqlite_path
from gateway.config import Settings
from security.crypto import KeyProvider, KeyProviderError, KeyRing, KeyRingError, LocalKeyProvider
from security.crypto.algorithms import profile


def sources_with_data(settings: Settings) -> list[str]:
    """Names of configured SQLite sources whose database file holds any table with rows.

    PostgreSQL sources are not probed here: production keys come from the operator's key
    provider, never generated on the fly, so ``open_keyring(create=False)`` is used there.
    """
    found = []
    for spec in settings.sources:
        path = sqlite_path(spec.url)
        if path is None or not path.exists() or path.stat().st_size == 0:
            continue
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master"
                    " WHERE type='table' AND name != 'alembic_version'"
                )
            ]
            # Table names come from sqlite_master of our own file, not from input.
            probes = (f'SELECT 1 FROM "{t}" LIMIT 1' for t in tables)  # noqa: S608
            if any(conn.execute(sql).fetchone() for sql in probes):
                found.append(spec.name)
        finally:
            conn.close()
    return found


def crypto_profile(settings: Settings) -> str:
    """``[crypto] profile`` ("standard" or "national"; ``MEDFED_CRYPTO_PROFILE`` overrides it).

    The profile picks the algorithms of keys created from now on; existing keys keep theirs.
    """
    return profile(settings.config.crypto.profile).name


def kek_location(settings: Settings) -> Path:
    """Where the local key provider keeps the KEKs: ``[crypto] kek_file`` or
    ``MEDFED_KEK_FILE``, by default ``<data-dir>/keys/kek.json`` (keep it on another volume or
    backup than the keyring in production)."""
    chosen = settings.config.crypto.kek_file
    return Path(chosen) if chosen else LocalKeyProvider.location(settings.data_dir)


def key_provider(settings: Settings, *, create: bool) -> KeyProvider:
    try:
        return LocalKeyProvider(
            kek_location(settings), create=create, algorithm=profile(crypto_profile(settings)).kek
        )
    except KeyProviderError as exc:
        raise KeyRingError(str(exc)) from None


def open_keyring(settings: Settings, *, create: bool) -> KeyRing:
    """The data directory's keyring; generated on first run only when no data exists yet.

    Losing a key loses every value encrypted under it, so if data exists but its keyring does
    not, refuse to go on rather than generate a fresh keyring that cannot read it.
    """
    location = KeyRing.location(settings.data_dir)
    chosen = crypto_profile(settings)
    if location.exists():
        # A v1 keyring (plain keys) is wrapped on load, which needs a KEK to be made.
        migrating = KeyRing.is_v1(settings.data_dir)
        return KeyRing.load(
            settings.data_dir, profile=chosen, provider=key_provider(settings, create=migrating)
        )
    with_data = sources_with_data(settings)
    if with_data:
        raise KeyRingError(
            f"the sources {', '.join(with_data)} hold encrypted data but the keyring "
            f"{location} is missing; restore it from backup (refusing to start, since new "
            f"keys could never read that data)"
        )
    if not create:
        raise KeyRingError(f"no keyring at {location}; run `medfed demo build` or restore it")
    return KeyRing.create(
        settings.data_dir,
        profile=chosen,
        provider=key_provider(settings, create=True),
        exist_ok=True,  # a process started beside this one may have created it meanwhile
    )
