"""Policy overhead: the cloud-record query of one person with many records (200 visits with
prescriptions, 200 results, 100 cross-province settlements) through the full HTTP stack (auth,
loaders, decryption, relations, enforcement) with the real field policy, divided by the same
with the enforcement point's decider returning ALLOW. Target: ratio <= 1.15.

Two callers: a clinician of the treating hospital (the real policy opens some fields, masks
others and hides the settlements, so it also does less work) and the patient (everything
allowed, so both runs do the same work and the ratio is the pure cost of deciding). Relations
are loaded in both runs (one batched query per source kind).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.common import allow_all

QUERY = """query($id: ID!) { person(personId: $id) { personId name idNumber gender birthDate
  phone cloudRecord {
    visits(first: 100) { nodes { visitId institutionCode visitType beginDate endDate
      diagnosisCodes diagnosisText doctorCode crossRegion } }
    testResults(first: 100) { nodes { resultId itemCode itemName value unit flag
      collectedAt reportedAt } }
    settlements(first: 100) { nodes { settlementId settledAt total fundPay cashPay
      crossProvince } }
  } } }"""


async def _world(data_dir: Path, visits: int, results: int, settlements: int):
    from tests.support.federation import RECENT_VISIT, Federation, make_id_number

    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(seq=321), "张三")
    # One visit inside the treating window makes the clinician's hospital treating (a visit
    # the bureau recorded is the only fact that does); the rest are older history.
    await fed.add_visits(ref, visits - 1)
    await fed.add_visits(ref, 1, begin=RECENT_VISIT)
    now = datetime.now()
    for i in range(results):
        await fed.add_result(ref, reported_at=now - timedelta(hours=i + 1))
    for i in range(settlements):
        await fed.add_cross_settlement(ref, when=datetime(2024, 1, 1) + timedelta(hours=i))
    return fed, ref


async def _measure(
    fed, ref: str, token: str, purpose: str | None, decider, rounds: int
) -> list[float]:
    from gateway.app import build_services

    services = build_services(fed.settings)
    if decider is not None:
        services._decider = decider
    app = fed.app(services)
    samples = []
    async with fed.client(app, token, purpose) as client:
        for i in range(rounds + 5):
            started = time.perf_counter()
            r = await client.post("/graphql", json={"query": QUERY, "variables": {"id": ref}})
            elapsed = time.perf_counter() - started
            if r.status_code != 200 or r.json()["data"]["person"] is None:
                raise RuntimeError(f"bad answer: {r.text[:300]}")
            if i >= 5:  # warm-up: parser and validation caches, connection pools
                samples.append(elapsed)
    recorder = services.extras.get("audit")
    if recorder is not None:  # drains its alert task and signs what it logged
        await recorder.close()
    await services.registry.dispose()
    if services.gateway_engine is not None:
        await services.gateway_engine.dispose()
    return samples


async def _run(quick: bool) -> None:
    visits, results, settlements = (50, 50, 25) if quick else (200, 200, 100)
    rounds = 10 if quick else 40
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        fed, ref = await _world(data_dir, visits, results, settlements)
        callers = {
            "treating clinician, TREATMENT (allows, masks, denies)": (
                fed.token("clinician", "H33010600001"),
                "TREATMENT",
            ),
            "the patient, own record (allows everything: same work both ways)": (
                fed.token("patient", "330106", person=ref),
                None,
            ),
        }
        figures = {}
        for name, (token, purpose) in callers.items():
            # Interleave the two so drift (caches, CPU frequency) hits both alike.
            real: list[float] = []
            base: list[float] = []
            for _ in range(3):
                real += await _measure(fed, ref, token, purpose, None, rounds // 3 + 1)
                base += await _measure(fed, ref, token, purpose, allow_all, rounds // 3 + 1)
            figures[name] = (statistics.median(real), statistics.median(base), len(real))
    print(f"records: {visits} visits, {results} results, {settlements} settlements (pages of 100)")
    for name, (p50_real, p50_base, n) in figures.items():
        print(f"caller: {name}")
        print(f"  p50 with the field policy : {p50_real * 1000:8.2f} ms  ({n} requests)")
        print(f"  p50 with allow_all        : {p50_base * 1000:8.2f} ms  ({n} requests)")
        print(f"  ratio policy / allow_all  : {p50_real / p50_base:8.3f}  (target <= 1.15)")


def main(args) -> None:
    asyncio.run(_run(getattr(args, "quick", False)))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args())
