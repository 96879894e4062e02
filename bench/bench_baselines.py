"""medfed against the baselines of issue 16, in one run: server CPU per cloud-record request.

Sides, each behind the same in-process ASGI caller (no HTTP client library, so the CPU
measured is the server's), the same persons and the same query:

* **medfed** on the SQLite demo and on the same demo in PostgreSQL (audit on, the real
  policy, the patient's own token);
* **naive**: the Strawberry app a user would write over the same sources
  (``bench/naive.py``: Strawberry's ``ParserCache`` and ``ValidationCache``, paging in SQL,
  no security), on SQLite and on PostgreSQL;
* **floor**: graphql-core executing the same selection from a parsed, validated document
  over the answer already in memory, plus ``orjson`` (no HTTP): what execution alone costs.

Rounds alternate the sides (the order rotates each round) so the load of a shared machine
falls on all of them; each round gives every side a CPU-per-request figure, each ratio is
taken per round, and the table prints the median ratio with its range over the rounds.
CPU is ``time.process_time`` of this process (every thread, so SQLite reader threads count);
PostgreSQL's own work is in its server processes and shows in wall time only.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.bench_api import CLOUD_RECORD
from bench.common import (
    AsgiCaller,
    bench_config,
    demo_dir,
    demo_persons,
    patient_tokens,
    percentiles,
    pg_demo_dir,
    pg_env,
    pg_problem,
    served,
    table,
    tree_cpu,
)

TARGETS = {"naive": 1.3, "floor": 2.0, "pg": 1.3}


def _settings(data: Path, env: dict[str, str] | None = None):
    from gateway.config import load_settings

    return load_settings(
        bench_config(), data_dir=data, env={"MEDFED_AUDIT_ENABLED": "true", **(env or {})}
    )


# -- the sides ----------------------------------------------------------------------------------
@dataclass
class Side:
    name: str
    call: Any  # async (person, token) -> answer dict
    close: Any = None
    cpu: list[float] = field(default_factory=list)  # seconds per request, one per round
    wall: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def _asgi_side(name: str, app: Any, query: str, close: Any = None) -> Side:
    caller = AsgiCaller(app)

    async def call(person: str, token: str) -> dict:
        body = orjson.dumps({"query": query, "variables": {"id": person}})
        status, raw = await caller.post(body, {"authorization": f"Bearer {token}"})
        answer = orjson.loads(raw)
        if status != 200 or "errors" in answer:
            raise RuntimeError(f"{name}: bad answer {raw[:300]!r}")
        return answer["data"]

    return Side(name, call, close)


def medfed_side(name: str, data: Path, env: dict[str, str] | None = None) -> Side:
    from gateway.app import build_services, create_app
    from gateway.audit_http import RECORDER

    settings = _settings(data, env)
    services = build_services(settings)
    app = create_app(settings, services)

    async def close() -> None:
        recorder = services.extras.get(RECORDER)
        if recorder is not None and hasattr(recorder, "close"):
            await recorder.close()
        await services.registry.dispose()
        if services.gateway_engine is not None:
            await services.gateway_engine.dispose()

    return _asgi_side(name, app, CLOUD_RECORD, close)


async def naive_side(name: str, data: Path, env: dict[str, str] | None = None) -> Side:
    from bench.naive import PgStore, SqliteStore, naive_app
    from gateway.startup import open_keyring
    from security.crypto import FieldCipher

    settings = _settings(data, env)
    specs = [s for s in settings.sources if s.kind != "directory"]
    if env:
        store: Any = PgStore(specs)
        await store.open()
    else:
        store = SqliteStore(specs)
    cipher = FieldCipher(open_keyring(settings, create=False))
    return _asgi_side(name, naive_app(store, cipher), CLOUD_RECORD, store.close)


def floor_side(answer: dict) -> Side:
    """graphql-core over ``answer`` in memory: the document parsed and validated once."""
    from graphql import build_schema, execute, parse, validate

    schema = build_schema(_sdl(answer))
    document = parse(CLOUD_RECORD)
    if errors := validate(schema, document):
        raise RuntimeError(f"floor schema does not fit the query: {errors}")

    async def call(person: str, _token: str) -> dict:
        result = execute(schema, document, root_value=answer, variable_values={"id": person})
        if result.errors:
            raise RuntimeError(f"floor: {result.errors}")
        return orjson.loads(orjson.dumps({"data": result.data}))["data"]

    return Side("floor (graphql-core + orjson)", call)


def _sdl(answer: dict) -> str:
    """An SDL of the answer's shape: scalars from the values, `first: Int` on each list."""
    types: list[str] = []

    def scalar(values: list[Any]) -> str:
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, bool):
            return "Boolean"
        if isinstance(sample, int):
            return "Int"
        if isinstance(sample, float):
            return "Float"
        if isinstance(sample, list):
            return "[String]"
        return "String"

    def object_type(name: str, items: list[dict]) -> str:
        fields = []
        keys = dict.fromkeys(k for item in items for k in item)
        for key in keys:
            values = [item.get(key) for item in items]
            sample = next((v for v in values if v is not None), None)
            if isinstance(sample, dict) and "nodes" in sample:
                nodes = [n for v in values if v for n in v["nodes"]] or [{"x": None}]
                node = object_type(f"{name}_{key}_node", nodes)
                types.append(f"type {name}_{key} {{ nodes: [{node}] }}")
                fields.append(f"{key}(first: Int): {name}_{key}")
            elif isinstance(sample, dict):
                fields.append(f"{key}: {object_type(f'{name}_{key}', [v for v in values if v])}")
            else:
                fields.append(f"{key}: {scalar(values)}")
        types.append(f"type {name} {{ {' '.join(fields)} }}")
        return name

    person = object_type("Person", [answer["person"]])
    return "\n".join([*types, f"type Query {{ person(personId: ID!): {person} }}"])


# -- the run ------------------------------------------------------------------------------------
def _ids(answer: dict) -> dict[str, list]:
    record = answer["person"]["cloudRecord"]
    return {key: [next(iter(n.values())) for n in conn["nodes"]] for key, conn in record.items()}


async def _round(side: Side, people: list[tuple[str, str]], n: int) -> None:
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        person, token = people[i % len(people)]
        started = time.perf_counter()
        await side.call(person, token)
        side.latencies.append(time.perf_counter() - started)
    side.cpu.append((time.process_time() - cpu0) / n)
    side.wall.append((time.perf_counter() - wall0) / n)


def _ratio_cell(a: Side, b: Side, target: float | None, *, wall: bool = False) -> str:
    xs, ys = (a.wall, b.wall) if wall else (a.cpu, b.cpu)
    ratios = sorted(x / y for x, y in zip(xs, ys, strict=True))
    med = statistics.median(ratios)
    mark = "" if target is None else (" ✓" if med <= target else " ✗")
    return f"{med:.2f}{mark} ({ratios[0]:.2f}–{ratios[-1]:.2f})"


async def run(rounds: int, per_round: int, persons: int, with_pg: bool) -> None:
    data = demo_dir(persons)
    people = patient_tokens(data, demo_persons(data, limit=20))
    sides = {"medfed": medfed_side("medfed, SQLite", data)}
    sides["naive"] = await naive_side("naive Strawberry, SQLite", data)
    # Same rows on both sides: every list holds the same ids for every person.
    full = None
    for person, token in people:
        ours = await sides["medfed"].call(person, token)
        theirs = await sides["naive"].call(person, token)
        if _ids(ours) != _ids(theirs):
            raise RuntimeError(f"the naive app answers other rows for {person}")
        if full is None and all(c["nodes"] for c in ours["person"]["cloudRecord"].values()):
            full = ours
    sides["floor"] = floor_side(full or ours)
    pg_people: list[tuple[str, str]] = []
    if with_pg:
        pg_data = pg_demo_dir(persons)
        pg_people = patient_tokens(pg_data, demo_persons(pg_data, limit=20, env=pg_env()))
        sides["medfed_pg"] = medfed_side("medfed, PostgreSQL", pg_data, pg_env())
        sides["naive_pg"] = await naive_side("naive Strawberry, PostgreSQL", pg_data, pg_env())
        for person, token in pg_people[:5]:
            ours = await sides["medfed_pg"].call(person, token)
            theirs = await sides["naive_pg"].call(person, token)
            if _ids(ours) != _ids(theirs):
                raise RuntimeError(f"the naive app answers other rows on PostgreSQL for {person}")
    order = list(sides)
    try:
        for name in order:  # warm-up: caches, pools, key derivation
            await _round(sides[name], pg_people if name.endswith("_pg") else people, 10)
            sides[name].cpu.clear(), sides[name].wall.clear(), sides[name].latencies.clear()
        for r in range(rounds):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                who = pg_people if name.endswith("_pg") else people
                await _round(sides[name], who, per_round)
    finally:
        for side in sides.values():
            if side.close is not None:
                await side.close()

    rows = []
    for side in sides.values():
        p50, p99 = percentiles(side.latencies)
        rows.append(
            [
                side.name,
                f"{statistics.median(side.cpu) * 1000:.2f}",
                f"{statistics.median(side.wall) * 1000:.2f}",
                f"{p50:.2f} / {p99:.2f} (÷ {p99 / p50:.1f})",
            ]
        )
    print(
        f"cloud record, demo of {persons:,} persons, 1 client in process; {rounds} rounds of "
        f"{per_round} requests per side, alternating; load average {os.getloadavg()[0]:.2f} "
        "at the end"
    )
    table(["side", "CPU ms / request", "wall ms / request", "p50 / p99 ms"], rows)
    ratios = [
        [
            "medfed ÷ naive Strawberry with caches, CPU (SQLite)",
            _ratio_cell(sides["medfed"], sides["naive"], TARGETS["naive"]),
            f"≤ {TARGETS['naive']}",
        ],
        [
            "medfed ÷ execution floor, CPU (SQLite)",
            _ratio_cell(sides["medfed"], sides["floor"], TARGETS["floor"]),
            f"≤ {TARGETS['floor']}",
        ],
    ]
    if with_pg:
        ratios += [
            [
                "medfed PostgreSQL ÷ SQLite, CPU",
                _ratio_cell(sides["medfed_pg"], sides["medfed"], TARGETS["pg"]),
                f"≤ {TARGETS['pg']}",
            ],
            [
                "medfed PostgreSQL ÷ SQLite, wall",
                _ratio_cell(sides["medfed_pg"], sides["medfed"], None, wall=True),
                "",
            ],
            [
                "medfed ÷ naive Strawberry with caches, CPU (PostgreSQL)",
                _ratio_cell(sides["medfed_pg"], sides["naive_pg"], TARGETS["naive"]),
                f"≤ {TARGETS['naive']}",
            ],
        ]
    print()
    table(["ratio (median over rounds, range)", "value", "target"], ratios)


# -- served: server CPU per request and throughput, 1 and 8 clients ----------------------------
async def _served_block(base: str, pid: int, people, seconds: float, clients: int):
    from bench.bench_api import _drive

    cpu0 = tree_cpu(pid)
    samples, rps = await _drive(base, people, seconds, clients)
    return (tree_cpu(pid) - cpu0) / len(samples), rps


def served_rows(rounds: int, seconds: float, persons: int, with_pg: bool) -> None:
    """Served sides up at once (``medfed serve``, audit on), driven in alternating blocks of
    ``seconds``: SQLite with 1 and 2 workers, PostgreSQL with 1. The load generator shares
    the machine, so req/s is a floor; server CPU per request is read from /proc."""
    import contextlib

    data = demo_dir(persons)
    people = patient_tokens(data, demo_persons(data, limit=20))
    setups = [("SQLite, 1 worker", data, 1, None, people)]
    setups.append(("SQLite, 2 workers", data, 2, None, people))
    if with_pg:
        pg_data = pg_demo_dir(persons)
        pg_people = patient_tokens(pg_data, demo_persons(pg_data, limit=20, env=pg_env()))
        setups.append(("PostgreSQL, 1 worker", pg_data, 1, pg_env(), pg_people))
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with contextlib.ExitStack() as stack:
        bases = []
        for name, where, workers, env, who in setups:
            pid: list[int] = []
            base = stack.enter_context(served(where, workers=workers, extra_env=env, pid_out=pid))
            bases.append((name, base, pid[0], who))
        for _name, base, pid, who in bases:  # warm-up
            asyncio.run(_served_block(base, pid, who, 1.0, 8))
        for r in range(rounds):
            for clients in (1, 8):
                for name, base, pid, who in bases[r % len(bases) :] + bases[: r % len(bases)]:
                    got = asyncio.run(_served_block(base, pid, who, seconds, clients))
                    results.setdefault((name, clients), []).append(got)

    def ratio(a: list, b: list, i: int) -> str:
        values = sorted(x[i] / y[i] for x, y in zip(a, b, strict=True))
        return f"{statistics.median(values):.2f} ({values[0]:.2f}–{values[-1]:.2f})"

    rows = [
        [
            f"{name}, {clients} client{'s' if clients > 1 else ''}",
            f"{statistics.median(c for c, _ in got) * 1000:.2f}",
            f"{statistics.median(r for _, r in got):.0f}",
        ]
        for (name, clients), got in results.items()
    ]
    print(
        f"served cloud record, {rounds} rounds of {seconds:.0f} s blocks per side, alternating; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    table(["server", "server CPU ms / request", "req/s"], rows)
    ratios = [
        [
            "2 workers ÷ 1, req/s at 8 clients (SQLite)",
            ratio(results[("SQLite, 2 workers", 8)], results[("SQLite, 1 worker", 8)], 1),
            "≥ 1.7",
        ]
    ]
    if with_pg:
        for clients in (1, 8):
            pg, sq = (
                results[("PostgreSQL, 1 worker", clients)],
                results[("SQLite, 1 worker", clients)],
            )
            ratios.append(
                [f"PostgreSQL ÷ SQLite, server CPU, {clients} client(s)", ratio(pg, sq, 0), "≤ 1.3"]
            )
            ratios.append(
                [f"PostgreSQL ÷ SQLite, req/s, {clients} client(s)", ratio(pg, sq, 1), ""]
            )
    print()
    table(["ratio (median over rounds, range)", "value", "target"], ratios)


def main(args) -> None:
    quick = getattr(args, "quick", False)
    problem = pg_problem()
    if problem:
        print(f"PostgreSQL rows skipped: {problem}")
    asyncio.run(
        run(
            rounds=4 if quick else 8,
            per_round=20 if quick else 50,
            # One size in both modes: the PostgreSQL demo is built once per database.
            persons=10_000,
            with_pg=problem is None,
        )
    )
    print()
    served_rows(3 if quick else 5, 2.0 if quick else 4.0, 10_000, problem is None)
