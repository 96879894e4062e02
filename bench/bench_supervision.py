"""Fund supervision over the demo: the latency the claims review adds to recordSettlement,
and the post-hoc scan's throughput (settlements per second).

In process (the app through httpx's ASGI transport). The review's cost is measured by
recording settlements of fresh visits with the shipped rule base and with an empty one,
alternating request by request so load on the shared machine falls on both alike; the
visits the bench adds (ids ``VB…``) and their settlements are deleted afterwards. The scan
runs ``connectors.supervision.scan`` over every settlement of the demo's period, storing
nothing.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import statistics
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from bench.common import bench_config, demo_dir, percentiles, table

HOSPITAL, TREATED = "H33010600001", "330106"
RECORD = """mutation($key: String!, $input: RecordSettlementInput!) {
  recordSettlement(idempotencyKey: $key, input: $input) { settlement { settlementId }
  warnings { rule } } }"""


def _fresh_visits(data: Path, n: int) -> list[tuple[str, str, str]]:
    """(personRef, pool, visitId) for ``n`` persons enrolled in Hangzhou, each given a new
    outpatient visit at the demo's Hangzhou hospital."""
    db = data / "sources" / "bureau-330000.db"
    day = date(2020, 10, 20)
    with sqlite3.connect(db) as conn:
        people = conn.execute(
            "SELECT person_ref, pool_admdvs FROM enrollments WHERE status = 'ACTIVE' "
            "AND pool_admdvs = '330100' ORDER BY enrollment_id LIMIT ?",
            (n,),
        ).fetchall()
        out = []
        for i, (ref, pool) in enumerate(people):
            mdtrt = f"VB{i:010d}"
            conn.execute(
                "INSERT OR REPLACE INTO visits (mdtrt_id, person_ref, institution_code, "
                "visit_type, begin_date, end_date, diagnosis_codes, diagnosis_text_enc, "
                "doctor_code, insuplc_admdvs, mdtrtarea_admvs, cross_region) "
                "VALUES (?, ?, ?, 'OUTPATIENT', ?, ?, 'J06.9', NULL, ?, ?, ?, 1)",
                (mdtrt, ref, HOSPITAL, day, day, f"D{HOSPITAL}{1 + i % 60:03d}", pool, TREATED),
            )
            out.append((ref, pool, mdtrt))
    return out


def _clean(data: Path) -> None:
    with sqlite3.connect(data / "sources" / "bureau-330000.db") as conn:
        conn.execute("DELETE FROM settlements WHERE mdtrt_id LIKE 'VB%'")
        conn.execute("DELETE FROM visits WHERE mdtrt_id LIKE 'VB%'")


async def _review_latency(data: Path, rounds: int) -> None:
    import httpx

    from connectors.supervision.rules import RuleBase
    from gateway.app import build_services, create_app
    from gateway.config import load_settings
    from security.identity import ensure_demo_issuer

    settings = load_settings(bench_config(), data_dir=data, env={})  # no rate limits
    services = build_services(settings)
    shipped, empty = services.claims_rules, RuleBase(())
    app = create_app(settings, services)
    issuer = ensure_demo_issuer(data)
    token = issuer.mint(role="insurance_agency", org="330000", ttl_seconds=7200)
    headers = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "SETTLEMENT"}
    visits = _fresh_visits(data, 2 * rounds + 4)
    run = secrets.token_hex(4)  # idempotency keys of their own: a rerun must not replay
    samples: dict[str, list[float]] = {"rules": [], "none": []}
    hits = 0
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b", timeout=600) as c:
            for i, (ref, pool, mdtrt) in enumerate(visits):
                mode = "rules" if i % 2 == 0 else "none"
                services.claims_rules = shipped if mode == "rules" else empty
                data_in = {
                    "personId": ref,
                    "visitId": mdtrt,
                    "institutionCode": HOSPITAL,
                    "medicalType": "OUTPATIENT",
                    "settledAt": (datetime(2020, 10, 20, 10) + timedelta(minutes=i)).isoformat(),
                    "insuredRegion": pool,
                    "treatmentRegion": TREATED,
                    "total": "85.00",
                    "inPolicy": "80.00",
                }
                started = time.perf_counter()
                response = await c.post(
                    "/graphql",
                    json={
                        "query": RECORD,
                        "variables": {"key": f"b{run}-{mdtrt}", "input": data_in},
                    },
                    headers=headers,
                )
                elapsed = time.perf_counter() - started
                body = response.json()
                if body.get("errors"):
                    raise RuntimeError(body["errors"][0]["message"])
                hits += len(body["data"]["recordSettlement"]["warnings"])
                if i >= 4:  # the first requests warm caches and connections
                    samples[mode].append(elapsed)
    finally:
        _clean(data)
        if (recorder := services.extras.get("audit")) is not None:
            await recorder.close()
        await services.registry.dispose()
        await services.gateway_engine.dispose()
    p50r, p99r = percentiles(samples["rules"])
    p50n, p99n = percentiles(samples["none"])
    table(
        ["recordSettlement", "requests", "p50 ms", "p99 ms"],
        [
            ["with the rule base (8 rules)", len(samples["rules"]), f"{p50r:.1f}", f"{p99r:.1f}"],
            ["with no rule", len(samples["none"]), f"{p50n:.1f}", f"{p99n:.1f}"],
        ],
    )
    paired = [a - b for a, b in zip(samples["rules"], samples["none"], strict=False)]
    print(
        f"review adds {statistics.median(paired) * 1000:.1f} ms at the median of paired "
        f"requests ({p50r - p50n:.1f} ms between the medians); {hits} warnings answered"
    )


async def _scan(data: Path) -> None:
    from connectors.supervision.scan import scan
    from gateway.app import build_services
    from gateway.config import load_settings

    services = build_services(load_settings(None, data_dir=data, env={}))
    registry = services.registry
    try:
        plat = registry.of_kind("platform")
        started = time.perf_counter()
        result = await scan(
            registry.of_kind("bureau"),
            plat[0] if plat else None,
            services.claims_rules,
            services.benefits,
            datetime(2018, 1, 1),
            datetime(2020, 11, 1),
        )
        elapsed = time.perf_counter() - started
    finally:
        await registry.dispose()
        await services.gateway_engine.dispose()
    by_rule: dict[str, int] = {}
    for f in result.findings:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    print(
        f"scan 2018-01 .. 2020-10: {result.settlements:,} settlements in {elapsed:.1f} s, "
        f"{result.settlements / elapsed:,.0f} settlements/s, {len(result.findings):,} hits"
    )
    table(["rule", "hits"], [[k, v] for k, v in sorted(by_rule.items())])


def main(args) -> None:
    persons = 2_000 if args.quick else 100_000
    rounds = 20 if args.quick else 100
    data = demo_dir(persons)
    print(f"demo of {persons:,} persons, in process")
    asyncio.run(_review_latency(data, rounds))
    asyncio.run(_scan(data))
