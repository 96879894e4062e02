"""Writes of the e-prescription workflow: a prescription at its hospital, each transition
as a compare-and-set of its state with the transition's event row, and the pharmacy's own
rows (dispensings, deliveries).

A transition is decided on the version the caller read: the state moves and the event lands
in one transaction only if no other transition came first, so two racing callers cannot both
dispense (the second finds the version moved and is refused). The event's primary key comes
from the idempotency key, so a retry of a transition that landed finds its own event and
goes on instead of failing.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.sql.models import hospital, pharmacy
from connectors.sql.writers import insert_all_if_absent

Row = dict[str, Any]
RX = hospital.EPrescription.__table__
ITEMS = hospital.EPrescriptionItem.__table__
EVENTS = hospital.PrescriptionEvent.__table__


class Outcome(Enum):
    APPLIED = "APPLIED"  # this call moved the state
    ALREADY = "ALREADY"  # this call's event was there already (a retry): nothing to do
    CONFLICT = "CONFLICT"  # another transition came first: nothing written


async def write_prescription(engine: AsyncEngine, rx: Row, items: list[Row], event: Row) -> None:
    """A new prescription with its items and its ISSUED event, in one transaction."""
    await insert_all_if_absent(
        engine, (RX, rx), *((ITEMS, item) for item in items), (EVENTS, event)
    )


async def transition(
    engine: AsyncEngine, rx_id: str, version: int, changes: Row, event: Row
) -> Outcome:
    """Apply ``changes`` to the prescription and append ``event`` (``seq`` = version + 1)
    if its version is still ``version``."""
    async with engine.begin() as conn:
        found = await conn.execute(
            select(EVENTS.c.event_id).where(EVENTS.c.event_id == event["event_id"])
        )
        if found.first() is not None:
            return Outcome.ALREADY
        moved = await conn.execute(
            update(RX)
            .where(RX.c.rx_id == rx_id, RX.c.version == version)
            .values(**changes, version=version + 1)
        )
        if moved.rowcount != 1:
            return Outcome.CONFLICT
        await conn.execute(EVENTS.insert().values({**event, "seq": version + 1}))
    return Outcome.APPLIED


async def events_of(engine: AsyncEngine, rx_ids: list[str]) -> list[Row]:
    """The events of these prescriptions, in order."""
    async with engine.connect() as conn:
        result = await conn.execute(
            select(EVENTS).where(EVENTS.c.rx_id.in_(rx_ids)).order_by(EVENTS.c.rx_id, EVENTS.c.seq)
        )
        return [dict(r._mapping) for r in result]


async def write_dispensing(engine: AsyncEngine, dispensing: Row, items: list[Row]) -> None:
    await insert_all_if_absent(
        engine,
        (pharmacy.Dispensing.__table__, dispensing),
        *((pharmacy.DispensingItem.__table__, item) for item in items),
    )


async def write_delivery(engine: AsyncEngine, row: Row) -> None:
    await insert_all_if_absent(engine, (pharmacy.Delivery.__table__, row))
