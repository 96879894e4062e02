"""Audit log: durable appends per second on SQLite (one appender, and 8 concurrent tasks
sharing group commits), and the time `audit verify` takes over a large log."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from connectors.sources import SourceSpec
from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from security.audit import AuditLogConfig, open_audit_log, verify_log


def _event(n: int) -> dict:
    # About the size of a real access event: principal, purpose, pseudonym, fields, sources.
    return {
        "time": "2026-11-23T08:00:00.000000Z",
        "request_id": f"req-{n:012d}",
        "principal": {
            "sub": f"doctor-{n % 500}",
            "role": "clinician",
            "org": "H33010600001",
            "issuer": "zj-health",
        },
        "purpose": "TREATMENT",
        "break_glass": False,
        "person": f"{n * 7919:064x}",
        "fields": {
            "read": ["Person.name", "TestResult.value"],
            "masked": ["Person.phone"],
            "denied": [],
        },
        "sources": ["bureau-330000", "hospital-h33010600001"],
        "outcome": "OK",
    }


async def _open(data_dir: Path, **config):
    spec = SourceSpec(
        name="gateway", kind="gateway", url=f"sqlite+aiosqlite:///{data_dir.as_posix()}/gateway.db"
    )
    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    return engine, open_audit_log(engine, data_dir / "keys", AuditLogConfig(**config))


async def _appends(data_dir: Path, tasks: int, per_task: int, inline: bool = False) -> float:
    engine, log = await _open(data_dir)
    await log.start()  # as the gateway does at startup: the writer process is running
    # A lone request's event commits on the loop's thread (inline); otherwise the batch
    # goes to the writer process.
    log.inline_when = lambda: inline

    async def worker(offset: int) -> None:
        for n in range(per_task):
            await log.append(_event(offset + n))

    started = time.perf_counter()
    await asyncio.gather(*(worker(i * per_task) for i in range(tasks)))
    elapsed = time.perf_counter() - started
    await log.close()
    await engine.dispose()
    return tasks * per_task / elapsed


async def _verify(data_dir: Path, size: int) -> tuple[float, float, float, bool]:
    """Build a log of ``size`` events (each with its audit_index row, as the gateway writes
    it), then verify it with and without the derived tables' check."""
    engine, log = await _open(data_dir)
    started = time.perf_counter()
    chunk = 50_000
    for start in range(0, size, chunk):
        await log.append_many(_event(n) for n in range(start, min(size, start + chunk)))
    await log.checkpoint()
    built = time.perf_counter() - started
    started = time.perf_counter()
    bare = await verify_log(engine, log.signer, origin=log.config.origin, derived=False)
    log_only = time.perf_counter() - started
    started = time.perf_counter()
    report = await verify_log(engine, log.signer, origin=log.config.origin)
    verified = time.perf_counter() - started
    await log.close()
    await engine.dispose()
    ok = report.ok and bare.ok and report.size == size
    assert report.derived is not None and report.derived.tables[0].rows == size
    return built, log_only, verified, ok


def _gateway_event(n: int) -> dict:
    """A cloud-record read's event as the gateway logs it (its ``time`` makes the log derive
    an index row), about 3 KB."""
    from security.audit.events import now_iso

    fields = [
        {"class": c, "field": f"{t}.{f}", "level": 3}
        for c, t in (("settlement", "Settlement"), ("visit", "Visit"), ("lab", "TestResult"))
        for f in ("id", "date", "total", "region", "status", "kind", "code", "unit")
    ]
    return {
        "v": 1,
        "kind": "QUERY",
        "time": now_iso(),
        "requestId": f"req-{n:012d}-{time.monotonic_ns()}",
        "principal": {"sub": "acct-1", "org": "330106", "role": "patient", "issuer": "demo"},
        "purpose": "PATIENT_ACCESS",
        "breakGlass": False,
        "persons": [{"personId": f"{n:032x}", "read": fields, "masked": [], "denied": []}],
        "holders": ["330000", "H33010600001", "P33010600101"],
        "sources": {"touched": ["bureau-330000", "hospital-h33010600001"], "failed": []},
        "outcome": "OK",
        "errors": [],
    }


async def _pg_appends(url: str, schema: str, appends: int, tasks: int) -> tuple[float, float]:
    """CPU ms of this process per durable append on PostgreSQL (the gateway's side of the
    work: building the leaves and rows, the statement, the driver), and appends/s."""
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    spec = SourceSpec(name="gateway", kind="gateway", url=url, schema=schema)
    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    with tempfile.TemporaryDirectory(prefix="medfed-bench-audit-pg-") as keys:
        log = open_audit_log(engine, Path(keys), AuditLogConfig())
        await log.start()
        for n in range(20):  # warm: the statement prepared, the connection held
            await log.append(_gateway_event(n))

        async def worker(offset: int) -> None:
            for n in range(appends // tasks):
                await log.append(_gateway_event(offset + n))

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(i * appends) for i in range(tasks)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await log.close()
    await engine.dispose()
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    return cpu / appends * 1000, appends / wall


def main(args) -> None:
    quick = getattr(args, "quick", False)
    single, per_task, big = (300, 200, 100_000) if quick else (2_000, 1_000, 1_000_000)
    rows = []
    with tempfile.TemporaryDirectory(prefix="medfed-bench-audit-") as tmp:
        rate = asyncio.run(_appends(Path(tmp) / "inline", 1, single, inline=True))
        rows.append(("durable appends/s, 1 appender, inline (SQLite, fsync)", f"{rate:,.0f}"))
        rate = asyncio.run(_appends(Path(tmp) / "one", 1, single))
        rows.append(("durable appends/s, 1 appender, writer process", f"{rate:,.0f}"))
        rate = asyncio.run(_appends(Path(tmp) / "eight", 8, per_task))
        rows.append(("durable appends/s, 8 concurrent tasks, writer process", f"{rate:,.0f}"))
        built, log_only, verified, ok = asyncio.run(_verify(Path(tmp) / "big", big))
        failed = "" if ok else " FAILED"
        rows.append((f"bulk build of {big:,} events with their index rows (s)", f"{built:.1f}"))
        rows.append(
            (f"audit verify of {big:,} events, the log alone (s){failed}", f"{log_only:.1f}")
        )
        rows.append(
            (
                f"audit verify of {big:,} events and their derived rows (s){failed}",
                f"{verified:.1f}",
            )
        )
    from bench.common import pg_problem

    problem = pg_problem()
    if problem is None:
        from bench.common import PG_URL

        for tasks in (1, 8):
            cpu, rate = asyncio.run(_pg_appends(PG_URL, "bench_audit_pg", single // 2, tasks))
            rows.append(
                (
                    f"durable appends on PostgreSQL, {tasks} task(s): gateway CPU ms / append",
                    f"{cpu:.3f}",
                )
            )
            rows.append((f"durable appends/s on PostgreSQL, {tasks} task(s)", f"{rate:,.0f}"))
    else:
        rows.append(("PostgreSQL rows skipped", problem))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>10}")
