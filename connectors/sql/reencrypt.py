"""Re-encryption and blind-index recomputation over the source databases, while they serve.

Both walk every table of a source's kind in primary-key order, one short read and one short
write transaction per batch, so a serving gateway is never blocked for long:

* **re-encryption** rewrites every ``*_enc`` value whose ciphertext names a key older than
  the source's current one, or is still in the first ciphertext format (without the source in
  its associated data), as a version-2 ciphertext under the current key. A value under a key
  *newer* than the run's target (a rotation happened during the run) is left alone, and the
  next pass targets that key, so a run converges instead of moving values back. A value that
  does not open as this source's (damaged, or copied from another source's database) stops
  the run naming its cell: it is never re-encrypted under this source's key. Each row's
  update is a compare-and-set (``WHERE col = <old bytes>``), so a value written concurrently
  (already under the current key) is never clobbered. The point reached is saved after each
  batch, so an interrupted run continues where it stopped. After a sweep it counts what is
  left (a gateway that had not yet noticed the rotation may have written under the old key)
  and sweeps again after the keyring refresh interval.
* **index recomputation** rewrites every ``*_bidx`` under the current index key during an
  index rotation. A ``<field>_bidx`` beside a ``<field>_enc`` is recomputed from the
  decrypted value; one with no plaintext beside it (the platform's filings) is translated
  through the old-to-new index map learnt from the other sources. It is idempotent, so a rerun
  is its resume.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Table, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from tqdm import tqdm

from connectors.sources import SourceSpec
from connectors.sql.engine import create_source_engine
from connectors.sql.models import METADATA_BY_KIND
from security.crypto import BlindIndexer, DecryptionError, FieldCipher, KeyRing
from security.crypto.blind_index import ID_NUMBER, PHONE
from security.crypto.field_cipher import VERSION as FIELD_VERSION
from security.crypto.keyring import REFRESH_SECONDS

MALFORMED = "(malformed)"
_INDEX_KINDS = {"id_number": ID_NUMBER, "phone": PHONE}
_MAX_PASSES = 5


@dataclass(frozen=True)
class EncryptedTable:
    table: Table
    pk: Column
    enc: tuple[Column, ...]
    bidx: tuple[tuple[Column, Column | None, str], ...]  # (index, its plaintext column, kind)


def encrypted_tables(kind: str) -> list[EncryptedTable]:
    """The tables of a source kind holding ciphertexts or blind indexes, in name order."""
    found = []
    for table in sorted(METADATA_BY_KIND[kind].sorted_tables, key=lambda t: t.name):
        (pk,) = table.primary_key.columns  # every source table has a single-column key
        enc = tuple(c for c in table.c if c.name.endswith("_enc"))
        bidx = tuple(
            (c, table.c.get(f"{c.name[:-5]}_enc"), _INDEX_KINDS[c.name[:-5]])
            for c in table.c
            if c.name.endswith("_bidx")
        )
        if enc or bidx:
            found.append(EncryptedTable(table, pk, enc, bidx))
    return found


async def _batches(
    engine: AsyncEngine, et: EncryptedTable, columns: Sequence[Column], after: Any, size: int
) -> AsyncIterator[list[Any]]:
    while True:
        query = select(et.pk, *columns).order_by(et.pk).limit(size)
        if after is not None:
            query = query.where(et.pk > after)
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


async def _row_count(engine: AsyncEngine, tables: Iterable[EncryptedTable]) -> int:
    async with engine.connect() as conn:
        total = 0
        for et in tables:
            total += (await conn.execute(select(func.count()).select_from(et.table))).scalar_one()
        return total


# -- counting -----------------------------------------------------------------------------------
async def count_by_key(spec: SourceSpec, *, batch: int = 5000) -> Counter[str]:
    """How many ``*_enc`` values of the source each key id protects (read from the headers)."""
    counts: Counter[str] = Counter()
    for (key_id, _), n in (await count_by_key_and_version(spec, batch=batch)).items():
        counts[key_id] += n
    return counts


async def count_by_key_and_version(
    spec: SourceSpec, *, batch: int = 5000
) -> Counter[tuple[str, int]]:
    """How many ``*_enc`` values each (key id, ciphertext version) covers (from the headers;
    a malformed header counts as ``(MALFORMED, 0)``)."""
    counts: Counter[tuple[str, int]] = Counter()
    tables = [et for et in encrypted_tables(spec.kind) if et.enc]
    engine = create_source_engine(spec)
    try:
        for et in tables:
            # Only the header is needed: 2 + 255 bytes bound any key id.
            heads = [func.substr(c, 1, 257).label(c.name) for c in et.enc]
            async for rows in _batches(engine, et, heads, None, batch):
                for row in rows:
                    for head in row[1:]:
                        if head is not None:
                            counts[_key_and_version(bytes(head))] += 1
    finally:
        await engine.dispose()
    return counts


def _key_and_version(head: bytes) -> tuple[str, int]:
    try:
        return FieldCipher.key_id_of(head), FieldCipher.version_of(head)
    except DecryptionError:
        return MALFORMED, 0


# -- resume points ------------------------------------------------------------------------------
class ResumeState:
    """Where each source's re-encryption stopped, in a small JSON file (no key material)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, dict]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            return {}  # a damaged resume file only costs a rescan from the start

    def get(self, source: str) -> dict | None:
        return self._read().get(source)

    def put(self, source: str, entry: dict | None) -> None:
        state = self._read()
        if entry is None:
            state.pop(source, None)
        else:
            state[source] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)


# -- re-encryption ------------------------------------------------------------------------------
@dataclass
class ReencryptResult:
    source: str
    target: str
    rewritten: int = 0
    conflicts: int = 0  # rows changed by someone else between read and write
    resumed_from: str | None = None
    remaining: Counter[str] = field(default_factory=Counter)


async def reencrypt_source(
    spec: SourceSpec,
    keyring: KeyRing,
    state: ResumeState,
    *,
    batch: int = 500,
    progress: bool | None = None,
    on_batch: Callable[[int], None] | None = None,
    grace: float = 2 * REFRESH_SECONDS,
) -> ReencryptResult:
    """Bring every value of ``spec`` under its current data key. ``on_batch`` is called after
    each committed batch with the number of rows done so far (an exception there interrupts
    the run exactly as Ctrl-C would; the resume point is already saved)."""
    keyring.refresh(force=True)
    target = keyring.current_key(spec.name).key_id
    cipher = FieldCipher(keyring)
    tables = [et for et in encrypted_tables(spec.kind) if et.enc]
    result = ReencryptResult(spec.name, target)
    entry = state.get(spec.name)
    if entry and entry.get("target") == target:
        result.resumed_from = f"{entry['table']} after {entry['after']!r}"
    else:
        entry = None
    engine = create_source_engine(spec)
    done = 0
    try:
        for _ in range(_MAX_PASSES):
            total = await _row_count(engine, tables)
            stale = _StaleValues(keyring, spec.name, target)
            with tqdm(
                total=total,
                unit="row",
                desc=f"re-encrypt {spec.name}",
                disable=None if progress is None else not progress,
            ) as bar:
                skipping = entry is not None
                for et in tables:
                    after = None
                    if skipping:
                        if et.table.name != entry["table"]:
                            continue
                        skipping, after = False, entry["after"]
                    async for rows in _batches(engine, et, et.enc, after, batch):
                        await _reencrypt_rows(engine, et, rows, cipher, spec.name, stale, result)
                        state.put(
                            spec.name,
                            {"target": target, "table": et.table.name, "after": rows[-1][0]},
                        )
                        bar.update(len(rows))
                        done += len(rows)
                        if on_batch is not None:
                            on_batch(done)
            entry = None
            keyring.refresh(force=True)
            newest = keyring.current_key(spec.name).key_id
            if newest != target:
                # A rotation during the run: what it wrote is under the newer key, which the
                # sweep left alone; the next pass brings everything under that key.
                target = result.target = newest
                result.remaining = Counter({"(rotated during the run)": 1})
                continue
            result.remaining = await _old_values(spec, stale)
            if not result.remaining:
                break
            # Values under an old key appeared behind the sweep: a writer had not yet re-read
            # the keyring. Past the refresh interval every writer uses the new key.
            await asyncio.sleep(grace)
    finally:
        await engine.dispose()
    if not result.remaining:
        state.put(spec.name, None)
    return result


class _StaleValues:
    """Which ciphertexts a pass must rewrite: a version-1 value, or one under a key of the
    source older than ``target``. A key newer than the target (made during the run) is never
    moved back; a key of another source is left to decryption, which refuses it."""

    def __init__(self, keyring: KeyRing, source: str, target: str) -> None:
        self.target = target
        self._order = {r.key_id: n for n, r in enumerate(keyring.keys_of(source))}
        self._target_rank = self._order[target]

    def stale(self, key_id: str, version: int) -> bool:
        if key_id == self.target:
            return version < FIELD_VERSION
        rank = self._order.get(key_id)
        return rank is None or rank < self._target_rank

    def __call__(self, blob: bytes) -> bool:
        return self.stale(FieldCipher.key_id_of(blob), FieldCipher.version_of(blob))


async def _old_values(spec: SourceSpec, stale: _StaleValues) -> Counter[str]:
    counts: Counter[str] = Counter()
    for (key_id, version), n in (await count_by_key_and_version(spec)).items():
        if key_id == MALFORMED or stale.stale(key_id, version):
            counts[key_id if version != 1 else f"{key_id} (v1)"] += n
    return counts


async def _reencrypt_rows(
    engine: AsyncEngine,
    et: EncryptedTable,
    rows: list[Any],
    cipher: FieldCipher,
    source: str,
    stale: _StaleValues,
    result: ReencryptResult,
) -> None:
    changes = []
    for row in rows:
        row_key = str(row[0])
        new_values, old_values = {}, {}
        for column, blob in zip(et.enc, row[1:], strict=True):
            if blob is None:
                continue
            blob = bytes(blob)
            if not stale(blob):
                continue
            address = {
                "source": source,
                "table": et.table.name,
                "column": column.name,
                "row_key": row_key,
            }
            # A value that does not decrypt stops the run (DecryptionError names the cell):
            # skipping it would let `keys retire` destroy the only key that might read it,
            # and a value under another source's key must never be re-encrypted under ours.
            plain = cipher.decrypt(blob, **address)
            new_values[column.name] = cipher.encrypt_with(plain, key_id=stale.target, **address)
            old_values[column.name] = blob
        if new_values:
            changes.append((row[0], new_values, old_values))
    if not changes:
        return
    # One executemany per set of changed columns: far fewer round trips than a statement per
    # row, and the compare-and-set guard still applies to each row.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for pk, new_values, old_values in changes:
        params = {"_pk": pk}
        for name in new_values:
            params[f"_new_{name}"], params[f"_old_{name}"] = new_values[name], old_values[name]
        groups.setdefault(tuple(new_values), []).append(params)
    async with engine.begin() as conn:
        for names, params in groups.items():
            guard = and_(
                et.pk == bindparam("_pk"), *(et.table.c[n] == bindparam(f"_old_{n}") for n in names)
            )
            statement = (
                update(et.table).where(guard).values({n: bindparam(f"_new_{n}") for n in names})
            )
            outcome = await conn.execute(statement, params)
            if conn.dialect.supports_sane_multi_rowcount or len(params) == 1:
                result.rewritten += outcome.rowcount * len(names)
                result.conflicts += len(params) - outcome.rowcount
            else:  # the driver cannot count: the sweep's final count catches any conflict
                result.rewritten += len(params) * len(names)


# -- blind-index recomputation --------------------------------------------------------------------
@dataclass
class RecomputeResult:
    updated: int = 0
    unmapped: int = 0  # indexes with no plaintext beside them and no mapping learnt
    finished: str | None = None  # the previous index key, retired when nothing is left


async def recompute_indexes(
    specs: Sequence[SourceSpec],
    keyring: KeyRing,
    *,
    batch: int = 500,
    progress: bool | None = None,
    grace: float = 2 * REFRESH_SECONDS,
) -> RecomputeResult:
    """Rewrite every blind index of ``specs`` under the current index key, then end the
    index rotation once a sweep finds nothing left to change. Pass every configured source:
    indexes without plaintext beside them are mapped from what the others reveal."""
    keyring.refresh(force=True)
    result = RecomputeResult()
    if not keyring.index_previous:
        return result
    # Until every gateway has re-read the keyring, some still look up with the previous key
    # only: rewriting an index before then would hide that row from them.
    wait = keyring.index_rotated_at + grace - time.time()
    if wait > 0:
        await asyncio.sleep(wait)
    for _ in range(_MAX_PASSES):
        sweep = await _recompute_sweep(specs, keyring, batch, progress)
        result.updated += sweep.updated
        result.unmapped = sweep.unmapped
        if not sweep.updated and not sweep.unmapped:
            result.finished = keyring.finish_index_rotation()
            break
        if sweep.unmapped:
            break
        # Another sweep after the refresh interval catches indexes a gateway wrote under the
        # previous key before it noticed the rotation; only a clean sweep ends the rotation.
        await asyncio.sleep(grace)
    return result


async def _recompute_sweep(
    specs: Sequence[SourceSpec], keyring: KeyRing, batch: int, progress: bool | None
) -> RecomputeResult:
    result = RecomputeResult()
    current = keyring.index_key(keyring.index_current)
    previous = keyring.index_key(keyring.index_previous or "")
    cipher, indexer = FieldCipher(keyring), BlindIndexer(keyring)
    mapping: dict[str, dict[str, str]] = {ID_NUMBER: {}, PHONE: {}}
    derived: list[tuple[SourceSpec, EncryptedTable]] = []
    for spec in specs:
        for et in encrypted_tables(spec.kind):
            if any(plain is None for _, plain, _ in et.bidx):
                derived.append((spec, et))
            direct = [b for b in et.bidx if b[1] is not None]
            if not direct:
                continue

            def recompute(
                row: Any, et: EncryptedTable = et, direct: list = direct, spec: SourceSpec = spec
            ) -> dict[str, str]:
                new = {}
                for (index_col, plain_col, kind), (stored, blob) in zip(
                    direct, _pairs(row), strict=True
                ):
                    if blob is None:
                        continue
                    plain = cipher.decrypt(
                        bytes(blob),
                        source=spec.name,
                        table=et.table.name,
                        column=plain_col.name,
                        row_key=str(row[0]),
                    )
                    fresh = indexer.index_with(current, kind, plain)
                    mapping[kind][indexer.index_with(previous, kind, plain)] = fresh
                    if stored != fresh:
                        new[index_col.name] = fresh
                return new

            columns = [c for index_col, plain_col, _ in direct for c in (index_col, plain_col)]
            await _rewrite(spec, et, columns, recompute, batch, progress, result)
    fresh_values = {kind: set(m.values()) for kind, m in mapping.items()}
    for spec, et in derived:
        indirect = [b for b in et.bidx if b[1] is None]

        def translate(row: Any, indirect: list = indirect) -> dict[str, str]:
            new = {}
            for (index_col, _, kind), stored in zip(indirect, row[1:], strict=True):
                if stored is None or stored in fresh_values[kind]:
                    continue
                if stored in mapping[kind]:
                    new[index_col.name] = mapping[kind][stored]
                else:
                    result.unmapped += 1
            return new

        columns = [index_col for index_col, _, _ in indirect]
        await _rewrite(spec, et, columns, translate, batch, progress, result)
    return result


def _pairs(row: Any) -> list[tuple[Any, Any]]:
    values = list(row[1:])
    return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]


async def _rewrite(
    spec: SourceSpec,
    et: EncryptedTable,
    columns: list[Column],
    compute: Callable[[Any], dict[str, str]],
    batch: int,
    progress: bool | None,
    result: RecomputeResult,
) -> None:
    engine = create_source_engine(spec)
    try:
        total = await _row_count(engine, [et])
        with tqdm(
            total=total,
            unit="row",
            desc=f"recompute {spec.name}.{et.table.name}",
            disable=None if progress is None else not progress,
        ) as bar:
            async for rows in _batches(engine, et, columns, None, batch):
                changes = []
                for row in rows:
                    new = compute(row)
                    if new:
                        old = dict(zip([c.name for c in columns], row[1:], strict=True))
                        changes.append((row[0], new, {k: old[k] for k in new}))
                if changes:
                    async with engine.begin() as conn:
                        for pk, new, old in changes:
                            guard = and_(et.pk == pk, *(et.table.c[k] == v for k, v in old.items()))
                            outcome = await conn.execute(
                                update(et.table).where(guard).values(**new)
                            )
                            result.updated += len(new) if outcome.rowcount == 1 else 0
                bar.update(len(rows))
    finally:
        await engine.dispose()
