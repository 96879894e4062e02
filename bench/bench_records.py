"""The records log on SQLite: appends per second one record at a time (as each mutation
anchors) and in batches of 1,000, `medfed records verify --log-only` over 1,000,000
synthetic records (100,000 with --quick) appended into the log, and `medfed records verify`
with every record checked at its source: a demo of 20,000 persons (1,000 with --quick) built
and anchored by `medfed demo build`, its real source rows read back, opened and hashed."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import medfed, table


def _anchor(n: int):
    from security.records import Anchor
    from security.records.digest import digest
    from security.records.log import new_salt

    salt = new_salt()
    record = {"result_id": f"R{n:012d}", "value": n * 0.5, "unit": "mmol/L"}
    return Anchor(
        "test_results",
        "hospital-h33010600001",
        f"R{n:012d}",
        digest("test_results", record, salt),
        salt,
    )


async def _open(data_dir: Path):
    from connectors.sources import SourceSpec
    from connectors.sql import migrate
    from connectors.sql.engine import create_source_engine
    from gateway.app import RECORDS_ORIGIN
    from security.records import RecordsLog, load_records_signer

    spec = SourceSpec(
        name="gateway", kind="gateway", url=f"sqlite+aiosqlite:///{data_dir.as_posix()}/gateway.db"
    )
    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    signer = load_records_signer(data_dir / "keys", RECORDS_ORIGIN)
    return engine, RecordsLog(engine, signer, RECORDS_ORIGIN)


async def _appends(data_dir: Path, single: int, batches: int) -> tuple[float, float]:
    engine, log = await _open(data_dir)
    started = time.perf_counter()
    for n in range(single):
        await log.append([_anchor(n)])
    one = single / (time.perf_counter() - started)
    started = time.perf_counter()
    for b in range(batches):
        await log.append([_anchor(single + b * 1000 + n) for n in range(1000)])
    many = batches * 1000 / (time.perf_counter() - started)
    await engine.dispose()
    return one, many


async def _fill(data_dir: Path, size: int) -> float:
    engine, log = await _open(data_dir)
    started = time.perf_counter()
    for start in range(0, size, 10_000):
        await log.append([_anchor(n) for n in range(start, min(size, start + 10_000))])
    await log.checkpoint()
    await engine.dispose()
    return time.perf_counter() - started


def _at_sources(work: Path, persons: int) -> dict:
    """Build and anchor a demo, then verify every record at its source; the figures."""
    started = time.perf_counter()
    out = medfed("demo", "build", "--persons", str(persons), "--quiet", data_dir=work)
    built = time.perf_counter() - started
    anchored = next(line for line in out.splitlines() if line.startswith("records log:"))
    started = time.perf_counter()
    report = json.loads(medfed("records", "verify", "--json", data_dir=work).strip())
    verified = time.perf_counter() - started
    assert report["logValid"] and not report["changed"] and not report["missing"], report
    return {"built": built, "anchored": anchored, "verified": verified, "report": report}


def main(args) -> None:
    size = 100_000 if args.quick else 1_000_000
    persons = 1_000 if args.quick else 20_000
    work = Path(tempfile.mkdtemp(prefix="medfed-bench-records-"))
    try:
        (work / "a").mkdir()
        one, many = asyncio.run(_appends(work / "a", 200 if args.quick else 1000, 20))
        (work / "b").mkdir()
        medfed("db", "upgrade", data_dir=work / "b")  # the sources the command opens
        filled = asyncio.run(_fill(work / "b", size))
        started = time.perf_counter()
        out = medfed("records", "verify", "--log-only", "--json", data_dir=work / "b")
        verified = time.perf_counter() - started
        report = json.loads(out.strip().splitlines()[-1])
        assert report["logValid"] and report["records"] == size, report
        (work / "c").mkdir()
        sources = _at_sources(work / "c", persons)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table(
        ["records log (SQLite)", "figure"],
        [
            ["appends/s, one record per append (as a mutation anchors)", f"{one:,.0f}"],
            ["appends/s, batches of 1,000", f"{many:,.0f}"],
            [f"filling {size:,} synthetic records (batches of 10,000)", f"{filled:.1f} s"],
            [f"`medfed records verify --log-only`, {size:,} records", f"{verified:.1f} s"],
            ["  of which the check itself (its report)", f"{report['seconds']:.1f} s"],
            [
                f"demo of {persons:,} persons built and anchored ({sources['anchored'][13:]})",
                f"{sources['built']:.1f} s",
            ],
            [
                f"`medfed records verify`, {sources['report']['records']:,} demo records, "
                "each checked at its source",
                f"{sources['verified']:.1f} s",
            ],
            [
                "  records checked per second (log and sources)",
                f"{sources['report']['records'] / sources['report']['seconds']:,.0f}",
            ],
        ],
    )
