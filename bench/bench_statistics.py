"""Statistics over the demo: latency per grade (p50, spread), statements per source, and the
error of differentially private answers against epsilon.

In process (the app through httpx's ASGI transport, no HTTP server): what is measured is the
pushed-down SQL, the merge and the grading. Each DP question is asked by a partner of its own
(a new org each time), so every answer is fresh noise and a real charge, never a stored one.

On the SQLite demo, then on the PostgreSQL one (a schema per source, as in production) when
PostgreSQL answers; ``MEDFED_BENCH_STATISTICS=sqlite`` or ``postgres`` runs one of them,
``MEDFED_BENCH_ROUNDS`` sets the rounds (5; 3 with ``--quick``).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

from bench.common import demo_dir, pg_demo_dir, pg_env, pg_problem, table

GRADES = {
    "EXACT (agency, own region; MONTH x MEDICAL_TYPE, cube of 4 levels)": (
        "insurance_agency",
        "330000",
        "SETTLEMENT",
        '{ settlementStatistics(groupBy: [MONTH, MEDICAL_TYPE], filter: {region: "330000"})'
        " { grade rows { suppressed } } }",
    ),
    "SUPPRESSED (agency, all regions; the grade's 4-dimension cube, cached 300 s)": (
        "insurance_agency",
        "330000",
        "SETTLEMENT",
        "{ settlementStatistics(groupBy: [INSURED_PROVINCE, MEDICAL_TYPE])"
        " { grade suppressedCells rows { suppressed } } }",
    ),
    "DP (researcher; TREATMENT_PROVINCE x CROSS_PROVINCE, 62 cells, fresh noise)": (
        "researcher",
        None,
        "RESEARCH",
        "{ settlementStatistics(groupBy: [TREATMENT_PROVINCE, CROSS_PROVINCE], epsilon: 1.0)"
        " { grade rows { suppressed } } }",
    ),
}


async def _forget_answers(engine) -> None:
    """Empty the bench demo's privacy ledger, so each run gets fresh noise (the same partner
    asking the same question would otherwise be answered from the ledger)."""
    from sqlalchemy import text

    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM privacy_spends"))
        await conn.execute(text("DELETE FROM privacy_budgets"))


class _Counter:
    def __init__(self, registry) -> None:
        from sqlalchemy import event

        self.by_source: dict[str, int] = {}
        for source in registry:

            def seen(*_a, name=source.name):
                self.by_source[name] = self.by_source.get(name, 0) + 1

            event.listen(source.engine.sync_engine, "before_cursor_execute", seen)

    def take(self) -> dict[str, int]:
        out, self.by_source = self.by_source, {}
        return out


async def _run(persons: int, rounds: int, backend: str) -> None:
    import httpx

    from gateway.app import build_services, create_app
    from gateway.config import load_settings
    from security.identity import ensure_demo_issuer

    env = pg_env() if backend == "postgres" else {}
    data = pg_demo_dir(persons) if backend == "postgres" else demo_dir(persons)
    settings = load_settings(None, data_dir=data, env=env)
    services = build_services(settings)
    await _forget_answers(services.gateway_engine)
    # The first SUPPRESSED question computes the grade's whole cube: on a loaded machine that
    # can take longer than the default statistics deadline.
    services.statistics_deadline_seconds = 600.0
    app = create_app(settings, services)
    issuer = ensure_demo_issuer(data)
    counter = _Counter(services.registry)
    transport = httpx.ASGITransport(app=app)
    serial = iter(range(1, 10_000_000))

    async def ask(role: str, org: str | None, purpose: str, query: str) -> tuple[float, Any]:
        org = org or f"R110108{next(serial):05d}"
        token = issuer.mint(role=role, org=org, ttl_seconds=7200)
        headers = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": purpose}
        async with httpx.AsyncClient(transport=transport, base_url="http://b", timeout=600) as c:
            started = time.perf_counter()
            response = await c.post("/graphql", json={"query": query}, headers=headers)
            elapsed = time.perf_counter() - started
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"{body['errors'][0]['message']}")
        return elapsed, body

    try:
        load = os.getloadavg()[0]
        print(
            f"{backend}: demo of {persons:,} persons, {rounds} rounds per grade, in process "
            f"(load average {load:.1f} at the start)"
        )
        rows = []
        for label, (role, org, purpose, query) in GRADES.items():
            samples, statements = [], {}
            for i in range(rounds):
                counter.take()
                elapsed, _ = await ask(role, org, purpose, query)
                taken = counter.take()
                if i == 0:
                    statements = taken
                    first = elapsed
                samples.append(elapsed)
            warm = samples[1:] or samples
            shown = ", ".join(f"{n}: {c}" for n, c in sorted(statements.items()))
            rows.append(
                [
                    label,
                    f"{first * 1000:,.0f}",
                    f"{statistics.median(warm) * 1000:,.0f}",
                    f"{min(warm) * 1000:,.0f}-{max(warm) * 1000:,.0f}",
                    shown,
                    f"{os.getloadavg()[0]:.1f}",
                ]
            )
        table(
            ["query", "first ms", "p50 ms (later rounds)", "spread ms", "statements", "load"],
            rows,
        )
        await _dp_error(ask, rounds)
    finally:
        recorder = services.extras.get("audit")
        if recorder is not None:
            await recorder.close()
        await services.registry.dispose()
        await services.gateway_engine.dispose()


async def _dp_error(ask, rounds: int) -> None:
    """Settlements and total cost by medical type (5 cells), and the cross-province fund
    share, each against the exact figures (the three agencies' own provinces and the
    platform, summed)."""
    exact_q = (
        "{ settlementStatistics(groupBy: [MEDICAL_TYPE, CROSS_PROVINCE]) "
        "{ rows { key { value } totalOver measures { name value } } } }"
    )
    exact: dict[str, dict[str, float]] = {}
    cross: dict[str, float] = {}
    asks = [("insurance_agency", org, {"region": org}) for org in ("330000", "370000", "220000")]
    asks.append(("settlement_center", "100000", None))
    for role, org, region in asks:
        query = exact_q
        if region:
            query = exact_q.replace(")", f', filter: {{region: "{region["region"]}"}})', 1)
        _, body = await ask(role, org, "SETTLEMENT", query)
        for row in body["data"]["settlementStatistics"]["rows"]:
            if row["totalOver"]:
                continue
            medical, is_cross = (k["value"] for k in row["key"])
            if (is_cross == "true") != (role == "settlement_center"):
                continue  # in-province from the agencies, cross-province from the platform
            m = {x["name"]: x["value"] for x in row["measures"]}
            cell = exact.setdefault(medical, {"settlements": 0.0, "totalCost": 0.0})
            cell["settlements"] += m["settlements"]
            cell["totalCost"] += m["totalCost"]
            if is_cross == "true":
                cross["fund"] = cross.get("fund", 0.0) + m["fundPayment"]
                cross["total"] = cross.get("total", 0.0) + m["totalCost"]
    true_share = cross["fund"] / cross["total"]
    rows = []
    for epsilon in (0.1, 0.5, 1.0, 2.0):
        errors: dict[str, list[float]] = {"settlements": [], "totalCost": [], "fundShare": []}
        halves: dict[str, list[float]] = {"settlements": [], "totalCost": []}
        for _ in range(max(3, rounds)):
            _, body = await ask(
                "researcher",
                None,
                "RESEARCH",
                f"{{ settlementStatistics(groupBy: [MEDICAL_TYPE], epsilon: {epsilon}, "
                'measures: ["settlements", "totalCost"]) { rows { key { value } '
                "measures { name value low high } } } }",
            )
            for row in body["data"]["settlementStatistics"]["rows"]:
                truth = exact.get(row["key"][0]["value"])
                if not truth:
                    continue
                m = {x["name"]: x for x in row["measures"]}
                for name in ("settlements", "totalCost"):
                    errors[name].append(abs(m[name]["value"] - truth[name]) / truth[name])
                    halves[name].append((m[name]["high"] - m[name]["value"]) / truth[name])
            _, body = await ask(
                "researcher",
                None,
                "RESEARCH",
                f"{{ settlementStatistics(groupBy: [CROSS_PROVINCE], epsilon: {epsilon}, "
                'measures: ["fundShare"]) { rows { key { value } measures { name value } } } }',
            )
            for row in body["data"]["settlementStatistics"]["rows"]:
                share = {x["name"]: x["value"] for x in row["measures"]}.get("fundShare")
                if row["key"][0]["value"] == "true" and share is not None:
                    errors["fundShare"].append(abs(share - true_share))
        rows.append(
            [
                f"{epsilon:g}",
                f"{statistics.median(errors['settlements']) * 100:.2f} %",
                f"{statistics.median(halves['settlements']) * 100:.2f} %",
                f"{statistics.median(errors['totalCost']) * 100:.2f} %",
                f"{statistics.median(halves['totalCost']) * 100:.2f} %",
                f"{statistics.median(errors['fundShare']) * 100:.2f} pt",
            ]
        )
    print()
    print(
        f"DP error against epsilon (exact cross-province fund share {true_share * 100:.1f} %): "
        "settlements and total cost by MEDICAL_TYPE (5 cells, epsilon split in 2), fund share "
        "from CROSS_PROVINCE (epsilon split in 2); median relative error over cells and "
        f"{max(3, rounds)} fresh answers per epsilon, with the bias of the contribution bounds "
        "(each person's total at a source: 40 settlements, 200,000 yuan)"
    )
    table(
        [
            "epsilon",
            "settlements: error",
            "95 % half-width",
            "total cost: error",
            "95 % half-width",
            "fund share: error",
        ],
        rows,
    )


def main(args) -> None:
    persons = 2_000 if args.quick else 100_000
    rounds = int(os.environ.get("MEDFED_BENCH_ROUNDS", 3 if args.quick else 5))
    wanted = os.environ.get("MEDFED_BENCH_STATISTICS", "both")
    if wanted in ("sqlite", "both"):
        asyncio.run(_run(persons, rounds, "sqlite"))
    if wanted in ("postgres", "both"):
        problem = pg_problem()
        if problem:
            print(f"PostgreSQL skipped: {problem}")
        else:
            print()
            asyncio.run(_run(persons, rounds, "postgres"))
