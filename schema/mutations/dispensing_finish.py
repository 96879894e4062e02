"""Finishing a dispensing that a crash left half-written: the prescribing hospital holds the
DISPENSED event (the compare-and-set landed) but the pharmacy has no dispensing row, because
the process stopped before it wrote it. Reconcile calls this as it settles that request's
intents, so the dispensing is whole without waiting for the client to retry.

The row is rebuilt from the hospital's signed event (its facts name the pharmacy, the bill's
split, the credential checked and the items handed out) and the prescription's items, exactly
as the request builds it (``dispensing.dispensing_of``), and written between an intent and an
outcome of its own (``by: reconcile``, in the original request's name), then anchored in the
records log. An event written before its facts carried the items cannot be finished here (the
client's retry still finishes it); that is logged, never guessed.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from connectors.domain.prescriptions import dispensing_id_of
from connectors.fanout import Deadline
from connectors.sql import rx_writers
from connectors.sql.queries import Row, fetch_in
from schema import anchoring
from schema.mutations.dispensing import DISPENSINGS, dispensing_of
from security.audit import writes
from security.audit.events import now_iso

log = logging.getLogger("medfed.audit")
OPERATION = "dispensePrescription"


def concerns(write: writes.Write, result: str) -> bool:
    """Whether settling this intent may leave a dispensing half-written: the hospital's
    DISPENSED event landed, or the pharmacy's row did not."""
    if write.operation != OPERATION:
        return False
    return (write.table == rx_writers.EVENTS.name and result == writes.APPLIED) or (
        write.table == DISPENSINGS.name and result == writes.NOT_APPLIED
    )


async def _event(services: Any, write: writes.Write) -> tuple[Any, Row] | None:
    """The hospital and its DISPENSED event that this write belongs to."""
    if write.table == rx_writers.EVENTS.name:
        hospital = services.registry.get(write.source)
        rows = await hospital.guarded(
            lambda: fetch_in(hospital.engine, rx_writers.EVENTS, "event_id", [write.object_id])
        )
        return (hospital, rows[0]) if rows else None
    # A dispensing's id is its prescription's: find the DISPENSED event at whichever hospital.
    rx_id = "R" + write.object_id[1:]
    table = rx_writers.EVENTS
    query = select(table).where(table.c.rx_id == rx_id, table.c.kind == "DISPENSED")
    for hospital in services.registry.of_kind("hospital"):

        async def look(engine=hospital.engine):
            async with engine.connect() as conn:
                return [dict(r._mapping) for r in await conn.execute(query)]

        rows = await hospital.guarded(look)
        if rows:
            return hospital, rows[0]
    return None


async def finish(
    services: Any,
    recorder: Any,
    intent_event: dict[str, Any],
    write: writes.Write,
    request_id: str,
) -> tuple[str, str] | None:
    """Write the pharmacy's missing dispensing for this intent's DISPENSED event: (pharmacy
    source, dispensing id), or None when nothing was missing (or it cannot be rebuilt).
    Raises when a source fails."""
    found = await _event(services, write)
    if found is None or found[1]["kind"] != "DISPENSED":
        return None
    hospital, event = found
    facts = json.loads(event["detail"])
    if "items" not in facts:
        log.warning(
            "dispensing of event %s cannot be rebuilt: its facts name no items", event["event_id"]
        )
        return None
    pharmacy = next(
        (
            s
            for s in services.registry.of_kind("pharmacy")
            if s.spec.institution == facts["pharmacy"]
        ),
        None,
    )
    if pharmacy is None:
        return None
    dispensing_id = dispensing_id_of(event["rx_id"])
    there = await pharmacy.guarded(
        lambda: fetch_in(pharmacy.engine, DISPENSINGS, "dispensing_id", [dispensing_id])
    )
    if there:
        return None
    rx = (
        await hospital.guarded(
            lambda: fetch_in(hospital.engine, rx_writers.RX, "rx_id", [event["rx_id"]])
        )
    )[0]
    prescribed = await hospital.guarded(
        lambda: fetch_in(hospital.engine, rx_writers.ITEMS, "rx_id", [event["rx_id"]])
    )
    row, items = dispensing_of(rx, event, prescribed)
    mine = writes.Write(
        OPERATION,
        pharmacy.name,
        DISPENSINGS.name,
        "dispensing_id",
        dispensing_id,
        key_digest=write.key_digest,
    )
    holder = services.registry.holder(pharmacy.name)
    # In the original request's name (its principal and purpose): reconcile only finishes it.
    intent = {
        **intent_event,
        "time": now_iso(),
        "requestId": request_id,
        "sources": {"touched": [pharmacy.name], "failed": []},
        "holders": [holder] if holder else [],
        "write": mine.to_json(),
        "process": writes.this_process(),
    }
    index = await recorder.record(intent)
    await pharmacy.guarded(lambda: rx_writers.write_dispensing(pharmacy.engine, row, items))
    await recorder.record(
        writes.outcome_event(
            intent=index,
            intent_event=intent,
            result=writes.APPLIED,
            by=writes.BY_RECONCILE,
            request_id=request_id,
        )
    )
    shim = SimpleNamespace(
        services=services, cipher=services.cipher, row_sources=set(), deadline=Deadline(10)
    )
    await anchoring.anchor(shim, pharmacy, DISPENSINGS.name, [dispensing_id])
    log.warning("dispensing %s finished by reconcile", dispensing_id)
    return pharmacy.name, dispensing_id
