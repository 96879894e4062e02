"""Checking an e-prescription's signatures as its hospital holds it now: the doctor's over
the prescription's canonical form, and each signed transition's over its event's (see
``connectors.domain.prescriptions``). Used by ``medfed rx verify`` and the trace."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.domain import prescriptions as machine
from connectors.sql import rx_writers
from connectors.sql.queries import Row, fetch_in
from security.crypto.professional_keys import ProfessionalKeys


@dataclass
class StepCheck:
    seq: int
    kind: str
    signer: str | None  # "org/code" of the key that signed, None for an unsigned step
    valid: bool | None  # None: an unsigned step (the patient's own)
    reason: str | None = None


@dataclass
class RxCheck:
    rx_id: str
    signer: str | None
    valid: bool
    reason: str | None
    steps: list[StepCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.valid and all(s.valid is not False for s in self.steps)


def check_rows(rx: Row, items: list[Row], events: list[Row], keys: ProfessionalKeys) -> RxCheck:
    verdict = keys.verify(rx["doctor_signature"], machine.prescription_document(rx, items))
    if (
        verdict.valid
        and verdict.key is not None
        and ((verdict.key.org, verdict.key.code) != (rx["institution_code"], rx["doctor_code"]))
    ):
        verdict = type(verdict)(False, verdict.key, "signed by another professional's key")
    result = RxCheck(
        rx["rx_id"],
        None if verdict.key is None else f"{verdict.key.org}/{verdict.key.code}",
        verdict.valid,
        verdict.reason,
    )
    for event in sorted(events, key=lambda e: e["seq"]):
        who = machine.signing_identity(event)
        if who is None:
            result.steps.append(StepCheck(event["seq"], event["kind"], None, None))
            continue
        document = machine.event_document(event, rx["doctor_signature"])
        step = keys.verify(event["signature"], document)
        valid, reason = step.valid, step.reason
        if valid and step.key is not None and (step.key.org, step.key.code) != who:
            valid, reason = False, "signed by another party's key"
        signer = None if step.key is None else f"{step.key.org}/{step.key.code}"
        result.steps.append(StepCheck(event["seq"], event["kind"], signer, valid, reason))
    return result


async def check(engine: AsyncEngine, rx_id: str, keys: ProfessionalKeys) -> RxCheck | None:
    """The check of one prescription at this hospital's source, or None if it is not here."""
    rows = await fetch_in(engine, rx_writers.RX, "rx_id", [rx_id])
    if not rows:
        return None
    items = await fetch_in(engine, rx_writers.ITEMS, "rx_id", [rx_id])
    events = await fetch_in(engine, rx_writers.EVENTS, "rx_id", [rx_id])
    return check_rows(rows[0], items, events, keys)
