"""Cost against a lifetime's rows: the same cloud-record answer for a person with about a
hundred rows and for the same person with 3,000 more, older ones (a chronic patient's
decades), server CPU per request, the two sides alternating.

The heavy side is a copy of the 10,000-person SQLite demo in which one demo person gets
1,000 extra visits and settlements at their bureau and 1,000 extra test results at a
hospital, all dated 1990 (older than every demo row), so a ``first: 20`` page answers the
same rows on both sides; the bench checks it does. Extra rows carry no ciphertext (their
encrypted columns are null), so they open nothing. The naive Strawberry app
(``bench/naive.py``, paging in SQL) runs over both copies too, as the flat reference.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import statistics
from datetime import datetime, timedelta
from pathlib import Path

from bench.bench_baselines import _ids, _round, medfed_side, naive_side
from bench.common import CACHE, demo_dir, demo_persons, medfed, patient_tokens, table

EXTRA = 1000  # rows per table: visits, settlements, test results
TARGET = 1.2
_TABLES = {  # table: (primary key, date column, kind of source)
    "visits": ("mdtrt_id", "begin_date", "bureau"),
    "settlements": ("setl_id", "setl_time", "bureau"),
    "test_results": ("result_id", "collected_at", "hospital"),
}


def _sources_with(data: Path, table_name: str, ref: str) -> list[Path]:
    found = []
    for path in sorted((data / "sources").glob("*.db")):
        conn = sqlite3.connect(path)
        try:
            has = conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name=?", (table_name,)
            ).fetchone()
            if (
                has
                and conn.execute(
                    f"SELECT 1 FROM {table_name} WHERE person_ref=? LIMIT 1",
                    (ref,),
                ).fetchone()
            ):
                found.append(path)
        finally:
            conn.close()
    return found


def heavy_copy(data: Path, ref: str) -> Path:
    """The demo at ``data`` with ``3 × EXTRA`` old rows more for ``ref`` (built once)."""
    path = CACHE / f"{data.name}-lifetime"
    stamp = path / "lifetime-person"
    if stamp.exists() and stamp.read_text(encoding="utf-8") == ref:
        medfed("db", "upgrade", data_dir=path)  # a no-op unless a migration came since
        return path
    print(f"copying the demo for a {3 * EXTRA:,}-row lifetime (once) ...", flush=True)
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(data, path, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    base = datetime(1990, 1, 1, 8, 0)
    for table_name, (pk, when, _kind) in _TABLES.items():
        target = _sources_with(path, table_name, ref)[0]
        conn = sqlite3.connect(target)
        try:
            cursor = conn.execute(
                f"SELECT * FROM {table_name} WHERE person_ref=? LIMIT 1",
                (ref,),
            )
            names = [d[0] for d in cursor.description]
            sample = dict(zip(names, cursor.fetchone(), strict=True))
            rows = []
            for i in range(EXTRA):
                row = dict(sample)
                row[pk] = f"L{i:06d}{sample[pk]}"[: len(sample[pk]) + 7]
                moment = base + timedelta(hours=i)
                row[when] = (
                    moment.date().isoformat()
                    if when == "begin_date"
                    else moment.strftime("%Y-%m-%d %H:%M:%S.%f")
                )
                for name in names:
                    if name.endswith("_enc"):
                        row[name] = None
                if table_name == "visits":
                    row["end_date"] = None
                rows.append(tuple(row[n] for n in names))
            marks = ", ".join("?" * len(names))
            conn.executemany(f"INSERT INTO {table_name} VALUES ({marks})", rows)
            conn.commit()
        finally:
            conn.close()
    stamp.write_text(ref, encoding="utf-8")
    return path


def _whole(side):
    """``side`` with every list loaded whole and paged in memory, as before issue 16: the
    rows-alike test answers no while this side's request runs (requests run one at a time)."""
    from schema.projection import Projection

    call = side.call

    async def whole(person: str, token: str) -> dict:
        original = Projection.rows_alike
        Projection.rows_alike = lambda *_: False
        try:
            return await call(person, token)
        finally:
            Projection.rows_alike = original

    side.call = whole
    return side


async def run(rounds: int, per_round: int) -> None:
    data = demo_dir(10_000)
    people = patient_tokens(data, demo_persons(data, limit=20))
    light = medfed_side("medfed, ~100 rows", data)
    # The person with rows in every list of the record: the same answer on both sides.
    chosen = None
    for person, token in people:
        answer = await light.call(person, token)
        if all(c["nodes"] for c in answer["person"]["cloudRecord"].values()):
            chosen = (person, token)
            break
    assert chosen is not None, "no demo person has rows in every list"
    heavy_data = heavy_copy(data, chosen[0])
    heavy = medfed_side(f"medfed, ~100 + {3 * EXTRA:,} rows", heavy_data)
    light_whole = _whole(medfed_side("medfed whole-load path, ~100 rows", data))
    heavy_whole = _whole(medfed_side(f"medfed whole-load path, ~100 + {3 * EXTRA:,}", heavy_data))
    naive_light = await naive_side("naive, ~100 rows", data)
    naive_heavy = await naive_side(f"naive, ~100 + {3 * EXTRA:,} rows", heavy_data)
    sides = [light, heavy, light_whole, heavy_whole, naive_light, naive_heavy]
    one = [chosen]
    expected = _ids(await light.call(*chosen))
    for side in sides:
        if _ids(await side.call(*chosen)) != expected:
            raise RuntimeError(f"{side.name} answers other rows")
    rows_of = sum(len(v) for v in expected.values())
    try:
        for side in sides:
            await _round(side, one, 10)
            side.cpu.clear(), side.wall.clear(), side.latencies.clear()
        for r in range(rounds):
            for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
                await _round(side, one, per_round)
    finally:
        for side in sides:
            await side.close()

    def ratio(a, b) -> str:
        ratios = sorted(x / y for x, y in zip(a.cpu, b.cpu, strict=True))
        med = statistics.median(ratios)
        return f"{med:.2f} ({ratios[0]:.2f}–{ratios[-1]:.2f})"

    print(
        f"cloud record of one person ({rows_of} rows answered), 1 client in process; "
        f"{rounds} rounds of {per_round} requests per side, alternating"
    )
    table(
        ["side", "CPU ms / request"],
        [[s.name, f"{statistics.median(s.cpu) * 1000:.2f}"] for s in sides],
    )
    print()
    table(
        ["ratio (median over rounds, range)", "value", "target"],
        [
            ["medfed: lifetime ÷ light, CPU", ratio(heavy, light), f"≤ {TARGET}"],
            [
                "medfed whole-load path (before): lifetime ÷ light, CPU",
                ratio(heavy_whole, light_whole),
                "",
            ],
            ["naive: lifetime ÷ light, CPU", ratio(naive_heavy, naive_light), ""],
        ],
    )


def main(args) -> None:
    quick = getattr(args, "quick", False)
    asyncio.run(run(rounds=4 if quick else 8, per_round=20 if quick else 50))
