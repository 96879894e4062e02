"""A crash between the hospital's DISPENSED and the pharmacy's row: the gateway (a real
process) is paused at ``rx.dispense.before_pharmacy`` (``security.failpoints``) and killed
there. The hospital then says DISPENSED while the pharmacy holds nothing; the next gateway's
start-up reconcile finishes the dispensing from the hospital's signed event, between an
intent and an outcome of its own, with no client retry. A retry afterwards writes nothing
twice."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from pathlib import Path

import httpx
import orjson
from sqlalchemy import select

from connectors.sql.engine import create_source_engine
from connectors.sql.models import hospital, pharmacy
from security.audit.models import AuditEvent
from security.audit.writes import outcomes_in
from security.records.log import LEAVES
from tests.support import REPO
from tests.support.prescriptions import (
    HOSPITAL,
    INPUTS,
    MUTATION,
    PHARMACY,
    PHARMACY_CODE,
    PHARMACY_PHARMACIST,
    Actors,
    dispense_input,
    issue_input,
    rx_federation,
)
from tests.support.processes import free_port, medfed

POINT = "rx.dispense.before_pharmacy"
FIELDS = "prescription { prescriptionId status } replayed"


def _post(url: str, token: str, name: str, key: str, data: dict, purpose: str) -> dict | None:
    query = MUTATION.format(type=INPUTS[name], name=name, fields=FIELDS)
    try:
        response = httpx.post(
            url + "/graphql",
            json={"query": query, "variables": {"key": key, "input": data}},
            headers={"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": purpose},
            timeout=90,
        )
    except httpx.HTTPError:
        return None  # killed mid-request: no answer
    return response.json()


def _data(body: dict | None, name: str) -> dict:
    assert body is not None and "errors" not in body, body
    return body["data"][name]["prescription"]


async def _rows(settings, rx_id: str) -> dict:
    found = {}
    for name, table, column in (
        (HOSPITAL, hospital.EPrescription.__table__, "rx_id"),
        (PHARMACY, pharmacy.Dispensing.__table__, "rx_id"),
    ):
        engine = create_source_engine(settings.source(name))
        async with engine.connect() as conn:
            rows = await conn.execute(select(table).where(table.c[column] == rx_id))
            found[name] = [dict(r._mapping) for r in rows]
        await engine.dispose()
    engine = create_source_engine(settings.gateway_spec)
    async with engine.connect() as conn:
        entries = (
            await conn.execute(select(AuditEvent.__table__.c.idx, AuditEvent.__table__.c.entry))
        ).all()
        found["events"] = [{**orjson.loads(e)["event"], "_index": i} for i, e in entries]
        found["anchored"] = set(
            (
                await conn.execute(select(LEAVES.c.record_id).where(LEAVES.c.kind == "dispensings"))
            ).scalars()
        )
    await engine.dispose()
    return found


def _pending(found: dict) -> list[dict]:
    settled = {w["intent"] for e in found["events"] for w in outcomes_in(e)}
    return [e for e in found["events"] if e.get("phase") == "INTENT" and e["_index"] not in settled]


def test_reconcile_finishes_a_dispensing_a_crash_left_half_written(tmp_path: Path, fault_table):
    row_of_table = fault_table.row("rx: kill -9 between DISPENSED and the pharmacy's row")
    row_of_table.runs, row_of_table.lost = 1, 1  # lost until reconcile finishes it
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    fed = asyncio.run(rx_federation(data_dir))
    who = Actors(fed)
    config = data_dir / "medfed-crash.toml"
    config.write_text(
        (REPO / "medfed.toml").read_text() + "\n[audit.reconcile]\nevery_seconds = 1\n"
    )
    folder = tmp_path / "fp"
    folder.mkdir()
    port = free_port()
    env = {"MEDFED_FAILPOINTS": f"{POINT}=pause", "MEDFED_FAILPOINT_DIR": str(folder)}
    gateway = medfed(data_dir, port=port, config=config, env=env).start(timeout=120)
    try:
        url = gateway.url
        rx_id = _data(
            _post(url, who.clinician, "issuePrescription", "i-1", issue_input(fed), "TREATMENT"),
            "issuePrescription",
        )["prescriptionId"]
        circulate = {"prescriptionId": rx_id, "pharmacyCode": PHARMACY_CODE}
        _data(
            _post(url, who.patient, "circulatePrescription", "c-1", circulate, "PATIENT_ACCESS"),
            "circulatePrescription",
        )
        review = {"prescriptionId": rx_id, "decision": "APPROVED"}
        _data(
            _post(url, who.pharmacist, "reviewPrescription", "r-1", review, "TREATMENT"),
            "reviewPrescription",
        )
        dispense = dispense_input(rx_id)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(
                _post, url, who.pharmacist, "dispensePrescription", "d-1", dispense, "TREATMENT"
            )
            give_up = time.monotonic() + 90
            while not (folder / f"{POINT}.reached").exists():
                assert time.monotonic() < give_up, "the failpoint was never reached"
                time.sleep(0.02)
            gateway.kill9()
            assert answer.result(timeout=60) is None  # the client never got an answer
    finally:
        gateway.stop()

    # Half-written: the hospital moved to DISPENSED, the pharmacy has nothing.
    found = asyncio.run(_rows(fed.settings, rx_id))
    assert found[HOSPITAL][0]["status"] == "DISPENSED"
    assert found[PHARMACY] == []

    gateway = medfed(data_dir, port=port, config=config).start(timeout=120)
    try:
        give_up = time.monotonic() + 90
        while not (found := asyncio.run(_rows(fed.settings, rx_id)))[PHARMACY] or _pending(found):
            assert time.monotonic() < give_up, "reconcile did not finish the dispensing"
            time.sleep(0.5)
        (row,) = found[PHARMACY]
        row_of_table.lost = 0  # the dispensing is whole, with no client retry
        assert row["pharmacist_code"] == PHARMACY_PHARMACIST and row["cert_type"] == "01"
        assert (row["total_fen"], row["fund_pay_fen"], row["delivery_fee_fen"]) == (4500, 3000, 800)
        assert row["dispensing_id"] in found["anchored"]  # and anchored in the records log
        mine = [
            e
            for e in found["events"]
            if e.get("phase") == "INTENT" and e["write"]["objectId"] == row["dispensing_id"]
        ]
        assert mine and mine[0]["requestId"].startswith("reconcile-")
        settled = {w["intent"]: w for e in found["events"] for w in outcomes_in(e)}
        assert settled[mine[0]["_index"]]["result"] == "APPLIED"
        assert _pending(found) == []  # every intent of the crashed request has its outcome

        # The client's retry afterwards: answered, and still one dispensing.
        body = _post(
            gateway.url, who.pharmacist, "dispensePrescription", "d-1", dispense, "TREATMENT"
        )
        assert _data(body, "dispensePrescription")["status"] == "DISPENSED"
        assert len(asyncio.run(_rows(fed.settings, rx_id))[PHARMACY]) == 1
    finally:
        gateway.stop()
