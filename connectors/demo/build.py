"""Build the demo: generate persons in batches (in worker processes for large builds),
encrypt, write every source, and record a content hash over the plain records.

Memory stays bounded because at most ``2 × workers`` batches are in flight: generated rows
are written and dropped batch by batch, never gathered into one list.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from tqdm import tqdm

from connectors.demo import generator
from connectors.demo.encode import Encoder, Rows
from connectors.demo.signing import sign_records
from connectors.demo.writer import SourceWriter
from connectors.sources import SourceSpec
from connectors.sql import migrate
from security.crypto import KeyRing
from security.crypto.professional_keys import ProfessionalKeys

MANIFEST = "demo-manifest.json"
MARKER = ".demo-built"
BATCH_PERSONS = 250
# Below this many persons, starting worker processes costs more than it saves.
PARALLEL_FROM = 2_000

ClearingTotals = dict[tuple[str, str, str], list[int]]


@dataclass
class BatchResult:
    rows: Rows
    digests: list[bytes]  # one per person, in index order
    clearings: ClearingTotals


@dataclass
class BuildReport:
    seed: int
    persons: int
    content_hash: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def manifest(self) -> dict:
        return {
            "seed": self.seed,
            "persons": self.persons,
            "contentHash": self.content_hash,
            "counts": self.counts,
        }


def destinations(specs: Iterable[SourceSpec]) -> dict[str, str]:
    """Generator destinations -> configured source names."""
    found = {}
    for spec in specs:
        if spec.kind == "bureau":
            found[generator.bureau(str(spec.region))] = spec.name
        elif spec.kind in ("hospital", "pharmacy"):
            found[f"{spec.kind}:{spec.institution}"] = spec.name
        elif spec.kind in ("platform", "directory"):
            found[spec.kind] = spec.name
    return found


def record_digest(records: list[generator.Record]) -> bytes:
    # orjson writes dates as ISO text, floats in their shortest exact form and dicts in
    # insertion order: a canonical form that is stable across runs and platforms, and fast.
    return hashlib.sha256(orjson.dumps(records)).digest()


def generate_batch(
    encoder: Encoder, seed: int, start: int, stop: int, keys: ProfessionalKeys | None = None
) -> BatchResult:
    records: list[generator.Record] = []
    digests, clearings = [], {}
    for index in range(start, stop):
        person = generator.generate_person(seed, index)
        digests.append(record_digest(person))
        if keys is not None:  # after the digest: the hash does not depend on the keys
            sign_records(person, keys, encoder.person_ref)
        for _, table, values in person:
            if table == "cross_settlements":
                totals = clearings.setdefault(generator.clearing_key(values), [0, 0, 0])
                totals[0] += 1
                totals[1] += int(values["total_fen"])  # type: ignore[call-overload]
                totals[2] += int(values["fund_pay_fen"])  # type: ignore[call-overload]
        records.extend(person)
    return BatchResult(encoder.encode(records), digests, clearings)


# -- worker processes -------------------------------------------------------------------------
_worker_encoder: Encoder | None = None
_worker_keys: ProfessionalKeys | None = None


def _init_worker(
    keyring: KeyRing, dests: dict[str, str], sqlite_sources: frozenset[str], keys_dir: Path
) -> None:
    global _worker_encoder, _worker_keys
    _worker_encoder = Encoder(keyring, dests, sqlite_sources)
    _worker_keys = ProfessionalKeys(keys_dir, keyring.profile.name)


def _worker_batch(seed: int, start: int, stop: int) -> BatchResult:
    assert _worker_encoder is not None
    return generate_batch(_worker_encoder, seed, start, stop, _worker_keys)


def default_workers(persons: int) -> int:
    return 0 if persons < PARALLEL_FROM else max(1, min(os.cpu_count() or 1, 4))


# -- the build ---------------------------------------------------------------------------------
async def migrate_all(specs: Iterable[SourceSpec]) -> None:
    for spec in specs:
        await migrate.upgrade(spec)


async def build(
    specs: list[SourceSpec],
    keyring: KeyRing,
    data_dir: Path,
    *,
    persons: int,
    seed: int,
    workers: int | None = None,
    progress: bool = True,
) -> BuildReport:
    """Write the demo into ``specs`` (migrated, empty, keys ensured) and ``data_dir``."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    for stale in (MARKER, MANIFEST):
        (data_dir / stale).unlink(missing_ok=True)
    dests = destinations(specs)
    sqlite_sources = frozenset(spec.name for spec in specs if spec.is_sqlite)
    encoder = Encoder(keyring, dests, sqlite_sources)
    workers = default_workers(persons) if workers is None else workers
    # Fork the workers before any database thread exists: a fork copies only this thread, and
    # a lock held by another thread at that moment would stay held in the child forever.
    pool = (
        multiprocessing.get_context("fork").Pool(
            workers, _init_worker, (keyring, dests, sqlite_sources, data_dir / "keys")
        )
        if workers > 0
        else None
    )
    hasher = hashlib.sha256()
    counts: dict[str, dict[str, int]] = {spec.name: {} for spec in specs}
    clearings: ClearingTotals = {}
    writer = SourceWriter(specs)

    async def write(rows: Rows) -> None:
        await writer.write(rows)
        for source, tables in rows.items():
            for table, batch in tables.items():
                counts[source][table] = counts[source].get(table, 0) + len(batch)

    try:
        directory = generator.directory_records()
        hasher.update(record_digest(directory))
        await write(encoder.encode(directory))
        bar = tqdm(
            total=persons,
            unit=" persons",
            file=sys.stderr,
            disable=not progress,
            desc="demo build",
            mininterval=0.5,
        )
        with bar:
            keys = ProfessionalKeys(data_dir / "keys", keyring.profile.name)
            for result in _batches(encoder, keys, pool, workers, seed, persons):
                for digest in result.digests:
                    hasher.update(digest)
                for key, (count, total, fund) in result.clearings.items():
                    totals = clearings.setdefault(key, [0, 0, 0])
                    totals[0] += count
                    totals[1] += total
                    totals[2] += fund
                await write(result.rows)
                bar.update(len(result.digests))
        clearing_rows = generator.clearing_records(clearings)
        hasher.update(record_digest(clearing_rows))
        await write(encoder.encode(clearing_rows))
    finally:
        await writer.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    report = BuildReport(
        seed,
        persons,
        hasher.hexdigest(),
        {s: dict(sorted(t.items())) for s, t in counts.items()},
        time.perf_counter() - started,
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MANIFEST).write_text(
        json.dumps(report.manifest(), indent=2) + "\n", encoding="utf-8"
    )
    # Written last: `make serve` takes its presence to mean a complete demo exists.
    (data_dir / MARKER).write_text(f"{report.content_hash}\n", encoding="utf-8")
    return report


def _batches(encoder: Encoder, keys: ProfessionalKeys, pool, workers: int, seed: int, persons: int):
    """Batch results in person order, generated by ``pool``'s workers when there is one."""
    bounds = iter(
        [(start, min(start + BATCH_PERSONS, persons)) for start in range(0, persons, BATCH_PERSONS)]
    )
    if pool is None:
        for start, stop in bounds:
            yield generate_batch(encoder, seed, start, stop, keys)
        return
    window = 2 * workers  # bounded read-ahead: memory stays flat however large N is
    pending: deque = deque(
        pool.apply_async(_worker_batch, (seed, *b)) for b in itertools.islice(bounds, window)
    )
    while pending:
        result = pending.popleft().get()
        for bound in itertools.islice(bounds, 1):
            pending.append(pool.apply_async(_worker_batch, (seed, *bound)))
        yield result
