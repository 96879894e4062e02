"""The benchmark suite of docs/performance.md: one table for two demo sizes (10,000 and 100,000
persons; ``--quick``: 2,000 and 10,000), with the targets beside the figures.

* served (``medfed serve``, rate limits off, audit on): a small lookup and the cloud record,
  p50/p99 and throughput at 1 and 2 uvicorn workers under several concurrent clients;
* in-process (no network, so the ratios are not drowned by the load generator): SQL
  statements per cloud-record request for the person with the fewest and the most rows;
  security overhead (the real field policy ÷ an enforcement point allowing everything, audit
  off); the whole stack (audit on) ÷ a bare Strawberry schema over the same rows in memory,
  both behind Strawberry's ASGI app on the same in-process transport;
* the blind-index lookup through ``fetch_in`` on a bureau ``persons`` table of 10,000 and of
  1,000,000 synthetic persons (real indexes, random ciphertext), cached under bench/results.

The machine may be shared: every ratio interleaves its two sides in alternating rounds so
drift (other processes, CPU frequency) hits both alike, and pools the samples per side.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.bench_api import CLOUD_RECORD, _bare_schema, _drive
from bench.common import (
    CACHE,
    bench_config,
    demo_dir,
    demo_persons,
    patient_tokens,
    percentiles,
    served,
    table,
)

LOOKUP = "query($id: ID!) { person(personId: $id) { personId name gender insuredRegion } }"
CLIENTS = 8
TARGETS = {"security": 1.25, "bare": 1.5, "lookup": 1.5}


@dataclass
class Load:
    p50: float
    p99: float
    rps: float

    def cell(self) -> str:
        return f"{self.p50:.1f} / {self.p99:.1f} ms, {self.rps:.0f}/s"


# -- served: latency and throughput ----------------------------------------------------------
def _served_loads(
    data: Path, people: list[tuple[str, str]], seconds: float
) -> dict[tuple[str, int], Load]:
    loads = {}
    for workers in (1, 2):
        with served(data, workers=workers) as base:
            for name, query in (("lookup", LOOKUP), ("cloud record", CLOUD_RECORD)):
                asyncio.run(_drive(base, people, 1.0, CLIENTS, query))  # warm-up
                samples, rps = asyncio.run(_drive(base, people, seconds, CLIENTS, query))
                loads[(name, workers)] = Load(*percentiles(samples), rps)
    return loads


# -- in-process: statements, security overhead, stack ÷ bare ---------------------------------
def _settings(data: Path, *, audit: bool):
    from gateway.config import load_settings

    return load_settings(
        bench_config(), data_dir=data, env={"MEDFED_AUDIT_ENABLED": "true" if audit else "false"}
    )


class _InProcess:
    """The real app (or a variant of it) behind an in-process ASGI transport."""

    def __init__(self, data: Path, *, audit: bool, allow_all: bool = False) -> None:
        from bench.common import allow_all as allow_everything
        from gateway.app import build_services, create_app

        self.services = build_services(_settings(data, audit=audit))
        if allow_all:
            self.services._decider = allow_everything
        self.app = create_app(_settings(data, audit=audit), self.services)

    async def close(self) -> None:
        from gateway.audit_http import RECORDER

        recorder = self.services.extras.get(RECORDER)
        if recorder is not None and hasattr(recorder, "close"):
            await recorder.close()
        await self.services.registry.dispose()
        if self.services.gateway_engine is not None:
            await self.services.gateway_engine.dispose()


async def _timed(app: Any, people: list[tuple[str, str]], query: str, rounds: int) -> list[float]:
    samples = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
        for i in range(rounds + 5):
            person, token = people[i % len(people)]
            started = time.perf_counter()
            r = await client.post(
                "/graphql",
                json={"query": query, "variables": {"id": person}},
                headers={"Authorization": f"Bearer {token}"},
            )
            elapsed = time.perf_counter() - started
            if r.status_code != 200 or "errors" in r.json():
                raise RuntimeError(f"bad answer: {r.text[:300]}")
            if i >= 5:  # warm-up: parse/validation caches, connection pools, key derivation
                samples.append(elapsed)
    return samples


def _rows_in(answer: dict) -> int:
    return sum(len(c["nodes"]) for c in answer["person"]["cloudRecord"].values())


async def _statements(data: Path, people: list[tuple[str, str]]) -> tuple[str, dict]:
    """Statements per cloud-record request for each person; the fewest- and most-rows
    persons are reported, and the answer of a person with rows in every list is kept for the
    bare schema."""
    stack = _InProcess(data, audit=True)
    counter = stack.services.registry.statement_counter()
    seen: list[tuple[int, int]] = []
    full = None
    transport = httpx.ASGITransport(app=stack.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
        for person, token in people:
            counter.reset()
            r = await client.post(
                "/graphql",
                json={"query": CLOUD_RECORD, "variables": {"id": person}},
                headers={"Authorization": f"Bearer {token}"},
            )
            answer = r.json()["data"]
            seen.append((_rows_in(answer), counter.count))
            if full is None and all(c["nodes"] for c in answer["person"]["cloudRecord"].values()):
                full = answer
    await stack.close()
    fewest, most = min(seen), max(seen)
    counts = {c for _, c in seen}
    cell = f"{fewest[1]} ({fewest[0]} rows) … {most[1]} ({most[0]} rows)" + (
        "" if len(counts) == 1 else f", {min(counts)}-{max(counts)}"
    )
    return cell, full or answer


async def _security_ratio(
    data: Path, people: list[tuple[str, str]], rounds: int, repeats: int
) -> tuple[float, float, float]:
    real: list[float] = []
    base: list[float] = []
    for _ in range(repeats):
        for allow, into in ((False, real), (True, base)):
            stack = _InProcess(data, audit=False, allow_all=allow)
            into += await _timed(stack.app, people, CLOUD_RECORD, rounds)
            await stack.close()
    on, off = statistics.median(real), statistics.median(base)
    return on * 1000, off * 1000, on / off


async def _bare_ratio(
    data: Path, people: list[tuple[str, str]], answer: dict, rounds: int, repeats: int
) -> tuple[float, float, float]:
    from strawberry.asgi import GraphQL

    bare_app = GraphQL(_bare_schema(answer))
    # The bare schema's connections take no arguments; same selection otherwise.
    bare_query = CLOUD_RECORD
    for field in ("enrollments", "visits", "settlements", "testResults", "filings"):
        bare_query = bare_query.replace(f"{field}(first: 20)", field)
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        stack = _InProcess(data, audit=True)
        ours += await _timed(stack.app, people, CLOUD_RECORD, rounds)
        await stack.close()
        bare += await _timed(bare_app, people, bare_query, rounds)
    stack_ms, bare_ms = statistics.median(ours), statistics.median(bare)
    return stack_ms * 1000, bare_ms * 1000, stack_ms / bare_ms


# -- blind-index lookup at 10k and 1M persons --------------------------------------------------
def _lookup_db(persons: int, data: Path) -> tuple[Path, list[str]]:
    """A bureau ``persons`` table of ``persons`` synthetic rows with real blind indexes (the
    demo's keys over synthetic ID numbers) and random ciphertext; built once."""
    from sqlalchemy import create_engine

    from connectors.sql.models import bureau
    from gateway.startup import open_keyring
    from security.crypto import BlindIndexer

    # The indexes are under this demo's keys: the cache is per demo.
    path = CACHE / f"lookup-{persons}-{data.name}.db"
    indexer = BlindIndexer(open_keyring(_settings(data, audit=False), create=False))

    def id_number(i: int) -> str:
        return f"3301{i:014d}"

    probes = [indexer.id_number(id_number(i)) for i in range(0, persons, max(1, persons // 500))]
    if path.exists():
        return path, probes
    print(f"building a {persons:,}-person lookup table in {path} (once) ...", flush=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{tmp}")
    bureau.Person.__table__.create(engine)
    engine.dispose()
    conn = sqlite3.connect(tmp)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    blob = os.urandom
    batch = 50_000
    for start in range(0, persons, batch):
        rows = []
        for i in range(start, min(persons, start + batch)):
            idn = id_number(i)
            rows.append(
                (
                    f"P{i:019d}",
                    indexer.person_ref(idn),
                    indexer.id_number(idn),
                    None,
                    blob(48),
                    blob(48),
                    None,
                    blob(40),
                    None,
                    "MALE" if i % 2 else "FEMALE",
                    "330106",
                )
            )
        conn.executemany(
            "INSERT INTO persons (psn_no, person_ref, id_number_bidx, phone_bidx, "
            "name_enc, id_number_enc, phone_enc, birth_date_enc, address_enc, "
            "gender, insuplc_admdvs) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    tmp.rename(path)
    return path, probes


async def _lookup_latency(path: Path, probes: list[str], rounds: int) -> list[float]:
    from sqlalchemy.ext.asyncio import create_async_engine

    from connectors.sql.models import bureau
    from connectors.sql.queries import fetch_in

    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    table = bureau.Person.__table__
    samples = []
    try:
        for i in range(rounds + 20):
            started = time.perf_counter()
            rows = await fetch_in(engine, table, "id_number_bidx", [probes[i % len(probes)]])
            elapsed = time.perf_counter() - started
            if len(rows) != 1:
                raise RuntimeError("the blind-index lookup did not find its row")
            if i >= 20:
                samples.append(elapsed)
    finally:
        await engine.dispose()
    return samples


def _lookup_ratio(data: Path, rounds: int) -> tuple[float, float, float]:
    small, large = (_lookup_db(n, data) for n in (10_000, 1_000_000))
    a: list[float] = []
    b: list[float] = []
    for _ in range(3):  # interleaved
        a += asyncio.run(_lookup_latency(*small, rounds))
        b += asyncio.run(_lookup_latency(*large, rounds))
    p_small, p_large = statistics.median(a) * 1000, statistics.median(b) * 1000
    return p_small, p_large, p_large / p_small


# -- the table -----------------------------------------------------------------------------------
def _mark(value: float, target: float) -> str:
    return f"{value:.2f} {'✓' if value <= target else '✗'}"


def main(args) -> None:
    quick = getattr(args, "quick", False)
    sizes = (2_000, 10_000) if quick else (10_000, 100_000)
    seconds = 3.0 if quick else 8.0
    # Many short alternating rounds: drift on a shared machine moves whole runs by ±20 %.
    rounds, repeats = (30, 2) if quick else (50, 6)
    columns: dict[int, dict[str, str]] = {}
    for persons in sizes:
        data = demo_dir(persons)
        people = patient_tokens(data, demo_persons(data, limit=20))
        col: dict[str, str] = {}
        for (name, workers), load in _served_loads(data, people, seconds).items():
            col[f"{name}, {workers} worker{'s' if workers > 1 else ''}"] = load.cell()
        col["SQL statements / cloud record"], answer = asyncio.run(_statements(data, people))
        on, off, ratio = asyncio.run(_security_ratio(data, people, rounds, repeats))
        col["security on ÷ allow-all (audit off)"] = f"{on:.2f} / {off:.2f} ms = " + _mark(
            ratio, TARGETS["security"]
        )
        ours, bare, ratio = asyncio.run(_bare_ratio(data, people, answer, rounds, repeats))
        col["stack ÷ bare Strawberry (cloud record)"] = f"{ours:.2f} / {bare:.2f} ms = " + _mark(
            ratio, TARGETS["bare"]
        )
        columns[persons] = col
    # Always the 10,000-person demo's keys, in both modes, so the tables are built once.
    small, large, ratio = _lookup_ratio(demo_dir(10_000), 200 if quick else 1000)
    targets = {
        "lookup, 1 worker": "p50 / p99, throughput",
        "SQL statements / cloud record": "constant in rows",
        "security on ÷ allow-all (audit off)": f"≤ {TARGETS['security']}",
        "stack ÷ bare Strawberry (cloud record)": f"≤ {TARGETS['bare']}",
    }
    rows = [
        [measure, *(columns[n][measure] for n in sizes), targets.get(measure, "")]
        for measure in columns[sizes[0]]
    ]
    rows.append(
        [
            "blind-index lookup p50, 10k → 1M persons",
            f"{small:.3f} ms (10k)",
            f"{large:.3f} ms (1M)",
            f"1M ÷ 10k = {_mark(ratio, TARGETS['lookup'])} (≤ {TARGETS['lookup']})",
        ]
    )
    print(
        f"served: {CLIENTS} concurrent clients, audit on, rate limits off; in-process ratios "
        f"interleaved over {repeats} rounds of {rounds} requests per side; load average "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    table(["measure", *(f"demo {n:,} persons" for n in sizes), "target"], rows)
