"""A write's intent is durable in the audit log before the write reaches its source, and its
outcome after: in the request's own event when it succeeded, in an event of its own when it
failed, from reconcile when its process died between the two. Auditors see intents still
without an outcome, and ``medfed audit reconcile`` settles them by looking the object up."""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select

from connectors.sql.models import hospital
from gateway.app import build_services
from gateway.audit_http import RECORDER
from schema.mutations.reconcile import reconcile
from security.audit import AuditWriteError
from security.audit import writes as audit_writes
from security.audit.models import AuditEvent
from security.audit.recorder import AuditRecorder
from tests.support.federation import RECENT_VISIT, Federation, make_id_number
from tests.support.mutations import RECENT, count, run

HOSPITAL = "hospital-h33010600001"
PUBLISH = """mutation($key: String!, $input: PublishTestResultInput!) {
  publishTestResult(idempotencyKey: $key, input: $input) { testResult { resultId } } }"""
PENDING = """{ auditEvents(filter: {pendingWrites: true}) { nodes { index
  writes { phase operation source objectId } } } }"""


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    fed.ref = await fed.add_person(make_id_number(seq=17), "孙八")
    (fed.visit,) = await fed.add_visits(fed.ref, 1, with_prescriptions=False, begin=RECENT_VISIT)
    fed.services = build_services(fed.settings)
    fed.app_ = fed.app(fed.services)
    return fed


def lab(fed) -> dict:
    return {
        "category": "LAB",
        "itemName": "葡萄糖",
        "loincCode": "2345-7",
        "value": 5.1,
        "unit": "mmol/L",
        "personId": fed.ref,
        "visitId": fed.visit,
        "collectedAt": (RECENT - timedelta(hours=1)).isoformat(),
        "reportedAt": RECENT.isoformat(),
        "orderingDoctor": "D330106000123",
    }


async def publish(fed, key: str) -> dict:
    token = fed.token("clinician", "H33010600001")
    return await run(fed, fed.app_, token, "TREATMENT", PUBLISH, {"key": key, "input": lab(fed)})


async def events(fed) -> list[dict]:
    recorder = fed.services.extras[RECORDER]
    table = AuditEvent.__table__
    async with recorder.engine.connect() as conn:
        rows = await conn.execute(select(table.c.idx, table.c.entry).order_by(table.c.idx))
        return [{**orjson.loads(entry)["event"], "_index": idx} for idx, entry in rows]


async def pending_for_auditor(fed) -> list[dict]:
    body = await run(fed, fed.app_, fed.token("auditor", "330000"), "AUDIT", PENDING, {})
    assert "errors" not in body, body
    return body["data"]["auditEvents"]["nodes"]


async def test_the_intent_is_logged_before_the_write_and_the_outcome_with_the_request(fed):
    body = await publish(fed, "k-1")
    result_id = body["data"]["publishTestResult"]["testResult"]["resultId"]
    logged = await events(fed)
    (intent,) = [e for e in logged if e.get("phase") == "INTENT"]
    assert intent["write"] | {"keyDigest": None} == {
        "operation": "publishTestResult",
        "source": HOSPITAL,
        "table": "test_results",
        "key": "result_id",
        "objectId": result_id,
        "appliedWhen": None,
        "keyDigest": None,
    }
    assert "k-1" not in orjson.dumps(intent).decode()  # the key only as a digest
    assert intent["process"]["pid"] == os.getpid()
    (request,) = [e for e in logged if e.get("writes")]
    assert request["_index"] > intent["_index"]
    assert request["writes"][0] | {"keyDigest": None} == {
        **intent["write"],
        "keyDigest": None,
        "intent": intent["_index"],
        "result": "APPLIED",
        "by": "request",
    }
    assert await pending_for_auditor(fed) == []


async def test_no_intent_logged_means_no_write_and_a_503(fed, monkeypatch):
    real = AuditRecorder.record

    async def refuse_intents(self, event):
        if event.get("phase") == "INTENT":
            raise AuditWriteError("the audit log is down (test)")
        return await real(self, event)

    monkeypatch.setattr(AuditRecorder, "record", refuse_intents)
    token = fed.token("clinician", "H33010600001")
    async with fed.client(fed.app_, token, "TREATMENT") as client:
        response = await client.post(
            "/graphql", json={"query": PUBLISH, "variables": {"key": "k-2", "input": lab(fed)}}
        )
    assert response.status_code == 503
    assert await count(fed, HOSPITAL, hospital.TestResult) == 0  # nothing at the source
    monkeypatch.setattr(AuditRecorder, "record", real)
    assert "errors" not in await publish(fed, "k-2")  # positive control: the retry writes it
    assert await count(fed, HOSPITAL, hospital.TestResult) == 1


async def test_a_write_that_fails_at_its_source_gets_a_not_applied_outcome(fed):
    # Another process holds the hospital's write lock: the checks still read it (WAL), the
    # write is refused as LOCKED after its intent was logged.
    locker = sqlite3.connect(fed.data_dir / "sources" / f"{HOSPITAL}.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    locker.execute("UPDATE test_results SET item_name = item_name")
    try:
        body = await publish(fed, "k-3")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    (error,) = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["reason"]) == (
        "SOURCE_UNAVAILABLE",
        "LOCKED",
    )
    assert await count(fed, HOSPITAL, hospital.TestResult) == 0
    logged = await events(fed)
    (intent,) = [e for e in logged if e.get("phase") == "INTENT"]
    (outcome,) = [e for e in logged if e.get("phase") == "OUTCOME"]
    assert outcome["write"]["intent"] == intent["_index"]
    assert (outcome["write"]["result"], outcome["write"]["by"]) == ("NOT_APPLIED", "request")


async def _orphan(fed, *, exists: bool, gone: bool = True) -> int:
    """An intent as a process that died between intent and outcome leaves it."""
    recorder = fed.services.extras[RECORDER]
    object_id = await fed.add_result(fed.ref) if exists else "R" + "X" * 23
    write = audit_writes.Write(
        "publishTestResult", HOSPITAL, "test_results", "result_id", object_id
    )
    event = audit_writes.intent_event(
        request_id="orphan",
        principal=None,
        purpose=None,
        person=fed.ref,
        write=write,
        holder=fed.services.registry.holder(HOSPITAL),
    )
    if gone:
        event["process"] = {**event["process"], "pid": 2**22 + 12345}  # no such process
    return await recorder.record(event)


async def test_reconcile_settles_the_intents_of_a_dead_process_by_looking_at_the_source(fed):
    recorder = fed.services.extras[RECORDER]
    found = await _orphan(fed, exists=True)
    missing = await _orphan(fed, exists=False)
    alive = await _orphan(fed, exists=False, gone=False)  # this very process: maybe writing
    assert {n["index"] for n in await pending_for_auditor(fed)} == {found, missing, alive}
    settled = await reconcile(fed.services, recorder, after_seconds=300)
    assert {(s.intent, s.result) for s in settled} == {
        (found, "APPLIED"),
        (missing, "NOT_APPLIED"),
    }
    assert {n["index"] for n in await pending_for_auditor(fed)} == {alive}
    # Settled once: a second run finds nothing more to do.
    assert await reconcile(fed.services, recorder, after_seconds=300) == []
    # Old enough, even a live process's intent is settled (its request is long over).
    (late,) = await reconcile(fed.services, recorder, after_seconds=0)
    assert (late.intent, late.result, late.reason) == (alive, "NOT_APPLIED", None)
    outcomes = [e for e in await events(fed) if e.get("phase") == "OUTCOME"]
    assert {e["write"]["by"] for e in outcomes} == {"reconcile"}


async def test_reconcile_leaves_an_intent_open_while_its_source_cannot_say(fed):
    recorder = fed.services.extras[RECORDER]
    intent = await _orphan(fed, exists=False)
    path = fed.data_dir / "sources" / f"{HOSPITAL}.db"
    os.rename(path, path.with_suffix(".gone"))
    (left,) = await reconcile(fed.services, recorder, after_seconds=300)
    assert (left.intent, left.result, left.reason) == (intent, "OPEN", "FILE_MISSING")
    assert [n["index"] for n in await pending_for_auditor(fed)] == [intent]
