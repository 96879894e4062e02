"""Cloud-record query latency and throughput through the full HTTP stack (uvicorn, auth,
loaders, decryption, enforcement), and the same query on a bare Strawberry schema over the
same rows already in memory."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from bench.common import demo_dir, demo_persons, patient_tokens, percentiles, served, table

CLOUD_RECORD = """query($id: ID!) { person(personId: $id) { personId name idNumber gender
  birthDate phone cloudRecord {
    enrollments(first: 20) { nodes { enrollmentId insuranceType poolingRegion beginDate
      endDate status accountBalance } }
    visits(first: 20) { nodes { visitId institutionCode visitType beginDate endDate
      diagnosisCodes diagnosisText doctorCode crossRegion } }
    settlements(first: 20) { nodes { settlementId settledAt total fundPay accountPay cashPay
      crossProvince } }
    testResults(first: 20) { nodes { resultId itemCode itemName value unit flag
      collectedAt } }
    filings(first: 20) { nodes { filingId destination status validFrom } }
  } } }"""


async def _drive(
    base: str,
    people: list[tuple[str, str]],
    seconds: float,
    concurrency: int,
    query: str = CLOUD_RECORD,
    headers: dict[str, str] | None = None,
) -> tuple[list[float], float]:
    """``concurrency`` clients send ``query`` for ``seconds``; each request asks about one demo
    person (``$id``) with that person's own patient token. Returns the latencies and the
    throughput."""
    samples: list[float] = []
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker(offset: int) -> None:
            i = offset
            while time.monotonic() < stop:
                started = time.perf_counter()
                person, token = people[i % len(people)]
                r = await client.post(
                    "/graphql",
                    json={"query": query, "variables": {"id": person}},
                    headers={"Authorization": f"Bearer {token}", **(headers or {})},
                )
                samples.append(time.perf_counter() - started)
                if r.status_code != 200 or "errors" in r.json():
                    raise RuntimeError(f"bad answer: {r.text[:300]}")
                i += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.monotonic() - started
    return samples, len(samples) / elapsed


# -- the bare schema: same shape, plain attributes, rows in memory ---------------------------
def _bare_schema(answer: dict) -> strawberry.Schema:
    """A Strawberry schema of the same shape whose resolvers return the rows as plain
    objects, so the ratio shows what medfed adds over Strawberry's own execution."""

    def dyn(name: str, sample: dict) -> type:
        annotations = {}
        for key, value in sample.items():
            annotations[key] = (
                (str | None)
                if not isinstance(value, list | bool | int | float)
                else (
                    list[str] | None
                    if isinstance(value, list)
                    else bool | None
                    if isinstance(value, bool)
                    else float | None
                    if isinstance(value, float)
                    else int | None
                )
            )
        cls = type(
            name,
            (),
            {
                "__annotations__": annotations,
                **{k: strawberry.field(default=None, name=k) for k in sample},
            },
        )
        return strawberry.type(cls)

    record = answer["person"]["cloudRecord"]
    lists = {}
    for key, conn in record.items():
        nodes = conn["nodes"]
        node_type = dyn(f"Bare{key}", nodes[0] if nodes else {"x": None})
        conn_type = strawberry.type(
            type(f"Bare{key}Conn", (), {"__annotations__": {"nodes": list[node_type]}})
        )
        lists[key] = (conn_type, node_type, nodes)

    record_type = strawberry.type(
        type(
            "BareRecord",
            (),
            {
                "__annotations__": {k: v[0] for k, v in lists.items()},
                **{k: strawberry.field(name=k, default=None) for k in lists},
            },
        )
    )
    person_fields = {k: v for k, v in answer["person"].items() if k != "cloudRecord"}
    person_base = dyn("BarePersonBase", person_fields)
    person_type = strawberry.type(
        type(
            "BarePerson",
            (person_base,),
            {
                "__annotations__": {"cloudRecord": record_type},
                "cloudRecord": strawberry.field(name="cloudRecord", default=None),
            },
        )
    )

    def build() -> object:
        rec = record_type(
            **{k: conn(nodes=[node(**n) for n in rows]) for k, (conn, node, rows) in lists.items()}
        )
        return person_type(**person_fields, cloudRecord=rec)

    def person(person_id: strawberry.ID) -> object:
        return build()

    query_type = strawberry.type(
        type(
            "BareQuery",
            (),
            {
                "__annotations__": {},
                "person": strawberry.field(resolver=person, graphql_type=person_type),
            },
        )
    )
    # Strawberry's own caches, two lines any user would add: medfed caches its documents too,
    # so a bare side without them would flatter medfed (issue 16).
    return strawberry.Schema(
        query_type, extensions=[ParserCache(maxsize=512), ValidationCache(maxsize=512)]
    )


@dataclass
class Row:
    label: str
    p50: float
    p99: float
    rps: float


async def _bare(answer: dict, seconds: float) -> Row:
    schema = _bare_schema(answer)
    query = (
        CLOUD_RECORD.replace("enrollments(first: 20)", "enrollments")
        .replace("visits(first: 20)", "visits")
        .replace("settlements(first: 20)", "settlements")
        .replace("testResults(first: 20)", "testResults")
        .replace("filings(first: 20)", "filings")
    )
    samples = []
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        started = time.perf_counter()
        result = await schema.execute(query, variable_values={"id": "x"})
        samples.append(time.perf_counter() - started)
        assert result.errors is None, result.errors
    p50, p99 = percentiles(samples)
    return Row("bare Strawberry, rows in memory", p50, p99, len(samples) / seconds)


def main(args) -> None:
    persons = 2_000 if args.quick else 10_000
    seconds = 3.0 if args.quick else 10.0
    data = demo_dir(persons)
    people = patient_tokens(data, demo_persons(data, limit=20))
    rows = []
    with served(data) as base:
        for concurrency in (1, 8):
            samples, rps = asyncio.run(_drive(base, people, seconds, concurrency))
            p50, p99 = percentiles(samples)
            rows.append(Row(f"medfed HTTP, {concurrency} client(s)", p50, p99, rps))
        # The bare schema's types are shaped from one answer, so use a person with rows in
        # every list of the record.
        for person, token in people:
            answer = httpx.post(
                f"{base}/graphql",
                json={"query": CLOUD_RECORD, "variables": {"id": person}},
                headers={"Authorization": f"Bearer {token}"},
            ).json()["data"]
            if all(c["nodes"] for c in answer["person"]["cloudRecord"].values()):
                break
    bare = asyncio.run(_bare(answer, seconds))
    rows.append(bare)
    print(f"cloud-record query, demo of {persons:,} persons, 1 uvicorn worker")
    table(
        ["path", "p50 ms", "p99 ms", "req/s"],
        [[r.label, f"{r.p50:.2f}", f"{r.p99:.2f}", f"{r.rps:.0f}"] for r in rows],
    )
    print(f"ratio medfed (1 client, p50) / bare Strawberry (p50): {rows[0].p50 / bare.p50:.2f}")
