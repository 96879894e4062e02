"""``medfed keys ...``: rotate, re-encrypt, inspect and retire keys while the gateway serves.

Runbook (data keys): ``rotate`` → ``reencrypt`` → ``status`` (old key at 0) → ``retire OLD``.
Runbook (blind-index key): ``rotate-index`` (lookups accept old and new) → ``recompute``
(rewrites every index, then ends the dual lookup and retires the old index key).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter

from gateway.commands import add_common, settings_from

STATE_FILE = "state/reencrypt.json"


def register(subparsers) -> None:
    keys = subparsers.add_parser("keys", help="rotate, re-encrypt, inspect and retire keys")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")

    rotate = actions.add_parser("rotate", help="new data key per source, current at once")
    rotate.add_argument("--source", action="append", help="only this source (repeatable)")
    rotate.add_argument(
        "--kek",
        action="store_true",
        help="also make a new key-encryption key and re-wrap every key under it",
    )
    rotate.set_defaults(handler=_rotate)

    reencrypt = actions.add_parser(
        "reencrypt", help="rewrite values still under old data keys (resumable, online)"
    )
    reencrypt.add_argument("--source", action="append", help="only this source (repeatable)")
    reencrypt.add_argument("--batch", type=int, default=500, help="rows per batch (500)")
    reencrypt.set_defaults(handler=_reencrypt)

    status = actions.add_parser("status", help="how many values each key still protects")
    status.set_defaults(handler=_status)

    retire = actions.add_parser("retire", help="destroy a key that protects nothing any more")
    retire.add_argument("key_id", metavar="KEY_ID")
    retire.set_defaults(handler=_retire)

    rotate_index = actions.add_parser(
        "rotate-index", help="new blind-index key; lookups accept old and new until recompute"
    )
    rotate_index.set_defaults(handler=_rotate_index)

    recompute = actions.add_parser(
        "recompute", help="rewrite blind indexes under the new index key, then end dual lookup"
    )
    recompute.add_argument("--batch", type=int, default=500, help="rows per batch (500)")
    recompute.set_defaults(handler=_recompute)

    for sub in (rotate, reencrypt, status, retire, rotate_index, recompute):
        add_common(sub)


def _context(args: argparse.Namespace):
    from gateway.startup import open_keyring

    settings = settings_from(args)
    return settings, open_keyring(settings, create=False)


def _encrypted_sources(settings, chosen: list[str] | None):
    """Configured sources whose kind stores ciphertexts, optionally narrowed by ``--source``."""
    from connectors.sql.reencrypt import encrypted_tables
    from gateway.cli import UsageError

    specs = [s for s in settings.sources if any(et.enc for et in encrypted_tables(s.kind))]
    if chosen:
        unknown = set(chosen) - {s.name for s in settings.sources}
        if unknown:
            raise UsageError(f"no configured source named {', '.join(sorted(unknown))}")
        specs = [s for s in specs if s.name in chosen]
    return specs


def _batch(value: int) -> int:
    from gateway.cli import UsageError

    if value < 1:
        raise UsageError(f"--batch must be at least 1, not {value}")
    return value


def _rotate(args: argparse.Namespace) -> int:
    settings, keyring = _context(args)
    if args.kek:
        print(f"KEK now {keyring.rotate_kek()}; every key re-wrapped under it")
    for spec in _encrypted_sources(settings, args.source):
        old = keyring.current.get(spec.name)
        key = keyring.rotate(spec.name)
        print(f"{spec.name:28} {old or '(none)':28} -> {key.key_id} ({key.algorithm})")
    print("new writes use the new keys now; run `medfed keys reencrypt` to rewrite old values")
    return 0


def _reencrypt(args: argparse.Namespace) -> int:
    from connectors.sql.reencrypt import ResumeState, reencrypt_source

    settings, keyring = _context(args)
    batch = _batch(args.batch)
    state = ResumeState(settings.data_dir / STATE_FILE)
    specs = [s for s in _encrypted_sources(settings, args.source) if s.name in keyring.current]
    incomplete = 0

    async def run() -> None:
        nonlocal incomplete
        for spec in specs:
            result = await reencrypt_source(spec, keyring, state, batch=batch)
            resumed = f", resumed at {result.resumed_from}" if result.resumed_from else ""
            left = sum(result.remaining.values())
            incomplete += left
            print(
                f"{spec.name:28} -> {result.target}: {result.rewritten} values rewritten, "
                f"{result.conflicts} rows changed concurrently{resumed}"
                + (f"; {left} still under old keys, run again" if left else "")
            )

    asyncio.run(run())
    return 1 if incomplete else 0


async def _counts(specs) -> Counter[str]:
    from connectors.sql.reencrypt import count_by_key

    total: Counter[str] = Counter()
    for spec in specs:
        total.update(await count_by_key(spec))
    return total


def _status(args: argparse.Namespace) -> int:
    from security.crypto.keyring import DATA, INDEX, PERSON_REF
    from security.crypto.usage import UsageError as UsageFileError

    settings, keyring = _context(args)
    specs = _encrypted_sources(settings, None)
    by_version = asyncio.run(_counts_by_version(specs))
    counts: Counter[str] = Counter()
    for (key_id, _), n in by_version.items():
        counts[key_id] += n
    first_format = sum(n for (_, version), n in by_version.items() if version == 1)
    try:
        encryptions = keyring.usage.counts()
    except UsageFileError:
        encryptions = {}  # keyring.warnings() below names the damaged file
    print(
        f"profile {keyring.profile.name}; key provider "
        f"{getattr(keyring.provider, 'name', '?')}, current KEK {keyring.provider.kek_id}"
    )
    print(
        f"{'KEY':26} {'PURPOSE':10} {'SOURCE':22} {'ALGORITHM':12} {'KEK':8} {'STATE':10} "
        f"{'VALUES':>8} {'ENCRYPTIONS':>13}"
    )
    current = set(keyring.current.values())
    for record in keyring.records.values():
        if record.retired:
            state = "retired"
        elif record.purpose == DATA:
            state = "current" if record.key_id in current else "old"
        elif record.purpose == INDEX:
            state = (
                "current"
                if record.key_id == keyring.index_current
                else "previous"
                if record.key_id == keyring.index_previous
                else "old"
            )
        else:
            state = "permanent"
        values = str(counts.pop(record.key_id, 0)) if record.purpose == DATA else "-"
        made = f"{encryptions.get(record.key_id, 0):,}" if record.purpose == DATA else "-"
        print(
            f"{record.key_id:26} {record.purpose:10} {record.source or '-':22} "
            f"{record.algorithm:12} {record.kek or '-':8} {state:10} {values:>8} {made:>13}"
        )
    for key_id, n in sorted(counts.items()):
        print(f"{key_id:26} {'data':10} {'?':22} {'?':12} {'-':8} {'MISSING':10} {n:>8}")
    if keyring.index_previous:
        print(
            f"index rotation under way: lookups accept {keyring.index_current} and "
            f"{keyring.index_previous}; run `medfed keys recompute` to finish it"
        )
    if first_format:
        print(
            f"{first_format} values are still in the first ciphertext format (not bound to "
            f"their source): run `medfed keys reencrypt`"
        )
    print(
        f"personId key {keyring.linkage_key_id} ({PERSON_REF}) never rotates: partners "
        f"store personIds"
    )
    for warning in keyring.warnings():
        print(f"warning: {warning}")
    return 1 if counts else 0


async def _counts_by_version(specs):
    from connectors.sql.reencrypt import count_by_key_and_version

    total: Counter[tuple[str, int]] = Counter()
    for spec in specs:
        total.update(await count_by_key_and_version(spec))
    return total


def _retire(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError
    from security.crypto.keyring import DATA, INDEX, KeyRingError

    settings, keyring = _context(args)
    key_id = args.key_id
    record = keyring.records.get(key_id)
    if record is None and key_id.startswith("kek-"):
        try:
            keyring.retire_kek(key_id)
        except KeyRingError as exc:
            raise UsageError(str(exc)) from None
        print(f"retired KEK {key_id}")
        return 0
    if record is None or record.retired:
        raise UsageError(f"no live key '{key_id}' in the keyring")
    if record.purpose == DATA:
        protected = asyncio.run(_counts(_encrypted_sources(settings, None))).get(key_id, 0)
        if protected:
            raise UsageError(
                f"{key_id} still protects {protected} values; run `medfed keys "
                f"reencrypt` first (refusing: retiring it would lose them)"
            )
    if record.purpose == INDEX and key_id == keyring.index_previous:
        raise UsageError(
            f"{key_id} is still accepted by lookups; `medfed keys recompute` "
            f"retires it once every index is rewritten"
        )
    keyring.retire(key_id)
    print(f"retired {key_id}: its material is destroyed, its id kept as a tombstone")
    return 0


def _rotate_index(args: argparse.Namespace) -> int:
    _, keyring = _context(args)
    previous = keyring.index_current
    key = keyring.rotate_index()
    print(
        f"blind-index key {previous} -> {key.key_id} ({key.algorithm}); lookups accept both "
        f"until `medfed keys recompute` finishes; personIds do not change"
    )
    return 0


def _recompute(args: argparse.Namespace) -> int:
    from connectors.sql.reencrypt import encrypted_tables, recompute_indexes

    settings, keyring = _context(args)
    if not keyring.index_previous:
        print("no index rotation under way; nothing to recompute")
        return 0
    specs = [s for s in settings.sources if any(et.bidx for et in encrypted_tables(s.kind))]
    result = asyncio.run(recompute_indexes(specs, keyring, batch=_batch(args.batch)))
    if result.unmapped:
        print(
            f"{result.updated} indexes rewritten; {result.unmapped} indexes have no plaintext "
            f"beside them and match no person in the configured sources: the previous key "
            f"stays accepted; configure the missing sources and run again"
        )
        return 1
    print(
        f"{result.updated} indexes rewritten; {result.finished} retired, lookups use "
        f"{keyring.index_current} only"
    )
    return 0
