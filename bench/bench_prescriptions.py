"""E-prescriptions through the API: the latency of each step from issue to dispensing (and
of the whole chain), in process over the full ASGI stack (auth, policy, idempotency, audit
intents and outcomes, signing, anchoring in the records log), on SQLite sources."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from bench.common import REPO, medfed, percentiles, table

STEPS = ("issue", "circulate", "review", "dispense")
CALL = """mutation($k: String!, $input: %s!) { %s(idempotencyKey: $k, input: $input) {
  prescription { prescriptionId status } } }"""
DRUG = "XC08CAA067A001010104163"


async def _run(data_dir: Path, rounds: int) -> dict[str, list[float]]:
    from connectors.sql.engine import create_source_engine
    from connectors.sql.models import bureau
    from gateway.app import build_services, create_app
    from gateway.config import load_settings
    from gateway.startup import open_keyring
    from security.crypto import BlindIndexer
    from security.identity import ensure_demo_issuer

    settings = dataclasses.replace(
        load_settings(REPO / "medfed.toml", data_dir=data_dir, env={}), dev=True
    )
    indexer = BlindIndexer(open_keyring(settings, create=False))
    ref = indexer.person_ref("330106198005171234")
    engine = create_source_engine(settings.source("bureau-330000"))
    visits = [
        dict(
            mdtrt_id=f"MDBENCH{n:06d}",
            person_ref=ref,
            institution_code="H33010600001",
            visit_type="OUTPATIENT",
            begin_date=date.today() - timedelta(days=3),
            end_date=None,
            diagnosis_codes="I10",
            diagnosis_text_enc=None,
            doctor_code="D330106000123",
            insuplc_admdvs="330106",
            mdtrtarea_admvs="330106",
            cross_region=False,
        )
        for n in range(1)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(bureau.Visit.__table__), visits)
    await engine.dispose()
    issuer = ensure_demo_issuer(data_dir)
    tokens = {
        "issue": issuer.mint(role="clinician", org="H33010600001", professional="D330106000123"),
        "circulate": issuer.mint(role="patient", org="330106", person=ref),
        "review": issuer.mint(
            role="pharmacist", org="P33010600101", professional="YP33010600101001"
        ),
        "dispense": issuer.mint(
            role="pharmacist", org="P33010600101", professional="YP33010600101001"
        ),
    }
    purpose = {"circulate": "PATIENT_ACCESS"}
    app = create_app(settings, build_services(settings))
    samples: dict[str, list[float]] = {s: [] for s in (*STEPS, "issue to dispense")}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://medfed.bench") as client,
    ):

        async def step(name: str, input_type: str, key: str, data: dict) -> dict:
            headers = {
                "Authorization": f"Bearer {tokens[name]}",
                "X-Purpose-Of-Use": purpose.get(name, "TREATMENT"),
            }
            field = f"{name}Prescription"
            started = time.perf_counter()
            r = await client.post(
                "/graphql",
                json={"query": CALL % (input_type, field), "variables": {"k": key, "input": data}},
                headers=headers,
            )
            samples[name].append(time.perf_counter() - started)
            body = r.json()
            if "errors" in body:
                raise RuntimeError(f"{field}: {body['errors'][0]['message'][:200]}")
            return body["data"][field]["prescription"]

        item = {
            "drugCode": DRUG,
            "drugName": "苯磺酸氨氯地平片",
            "quantity": 2,
            "unit": "盒",
            "dosage": "5mg 每日1次 口服",
            "days": 28,
        }
        for n in range(rounds + 2):  # the first two warm caches and keys: not counted
            started = time.perf_counter()
            rx = await step(
                "issue",
                "IssuePrescriptionInput",
                f"i{n}",
                {
                    "personId": ref,
                    "visitId": "MDBENCH000000",
                    "doctorCode": "D330106000123",
                    "items": [item],
                },
            )
            rx_id = rx["prescriptionId"]
            await step(
                "circulate",
                "CirculatePrescriptionInput",
                f"c{n}",
                {"prescriptionId": rx_id, "pharmacyCode": "P33010600101"},
            )
            await step(
                "review",
                "ReviewPrescriptionInput",
                f"r{n}",
                {
                    "prescriptionId": rx_id,
                    "pharmacistCode": "YP33010600101001",
                    "decision": "APPROVED",
                },
            )
            await step(
                "dispense",
                "DispensePrescriptionInput",
                f"d{n}",
                {
                    "prescriptionId": rx_id,
                    "pharmacistCode": "YP33010600101001",
                    "certType": "01",
                    "items": [{"drugCode": DRUG, "quantity": 2, "amount": "45.00"}],
                    "fundPay": "30.00",
                    "accountPay": "10.00",
                    "cashPay": "5.00",
                },
            )
            samples["issue to dispense"].append(time.perf_counter() - started)
            if n < 2:
                for values in samples.values():
                    values.pop()
    return samples


def main(args) -> None:
    rounds = 5 if args.quick else 40
    work = Path(tempfile.mkdtemp(prefix="medfed-bench-rx-"))
    try:
        medfed("demo", "build", "--persons", "50", "--quiet", data_dir=work)
        medfed("db", "upgrade", data_dir=work)  # the gateway database too
        samples = asyncio.run(_run(work, rounds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for name, values in samples.items():
        p50, p99 = percentiles(values)
        rows.append([name, len(values), f"{p50:.1f}", f"{p99:.1f}"])
    table(["step (one client, SQLite)", "n", "p50 ms", "p99 ms"], rows)
