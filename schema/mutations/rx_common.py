"""What every e-prescription transition shares: finding the prescription at its hospital,
the caller's standing towards it, the compare-and-set write of the transition with its
event, and the payload.

A caller who may not act on a prescription gets the same one problem whether it exists or
not (``no prescription with this id that you may …``), so the answer is no oracle for
prescriptions of other hospitals, pharmacies or patients. Only a caller who may act learns
its state (``DISPENSED needs the prescription APPROVED; it is PENDING_REVIEW``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError

from connectors.domain import prescriptions as machine
from connectors.registry import Source
from connectors.sql import rx_writers
from connectors.sql.queries import Row, fetch_in
from schema import anchoring, signing
from schema.errors import TRANSITION_CONFLICT, forbidden
from schema.mutations import lookups
from schema.mutations import validation as v
from schema.mutations.idempotent import Created, IdempotentCall, Target
from schema.selection import requested
from schema.types.records import PRESCRIPTION, Prescription

RX_ID_RE = re.compile(r"^R[0-9A-Z]{10,23}$")


@strawberry.type(description="What an e-prescription mutation did.")
class PrescriptionPayload:
    prescription: Prescription | None = strawberry.field(
        description="The prescription after the transition, as `prescription` returns it "
        "(a replay returns it as it is now)."
    )
    replayed: bool = strawberry.field(
        description="True when this idempotencyKey had already made this transition: "
        "nothing new was written."
    )


@dataclass
class Found:
    """A prescription at its hospital, as read before the transition."""

    source: Source
    row: Row

    @property
    def state(self) -> machine.State:
        return machine.State(self.row["status"])


def acting_professional(ctx: Any, operation: str, given: str | None, field: str) -> str:
    """The code of the doctor or pharmacist the caller's token stands for: the only one they
    may sign as. It comes from the ``professional`` claim, which only an issuer whose scope
    allows it may assert; a code in the input is the caller's own word, so it may only repeat
    the token's. Raised before anything is read or written (fail closed)."""
    mine = ctx.principal.professional
    if mine is None:
        raise forbidden(
            f"{operation} is signed as the professional your identity provider asserts, and "
            "this token names none (claim 'professional', from an issuer whose scope has "
            "professionals = true)"
        )
    if given is not None and given != mine:
        raise forbidden(
            f"{operation}: input.{field} is not the professional your token asserts; you sign "
            "only as yourself (leave it out, or give your own code)"
        )
    return mine


def detail(**values: Any) -> str:
    return machine.canonical_detail(values)


async def find(ctx: Any, rx_id: str) -> Found | None:
    """The prescription at whichever hospital holds it (each hospital is asked)."""
    table = rx_writers.RX
    found = await lookups.ask_all(
        ctx, ctx.registry.of_kind("hospital"), lambda e: fetch_in(e, table, "rx_id", [rx_id])
    )
    for name, rows in found.items():
        if rows:
            return Found(ctx.registry.get(name), rows[0])
    return None


def check_rx_id(p: v.Problems, value: str) -> bool:
    if not RX_ID_RE.match(value):
        p.add(["input", "prescriptionId"], "is not a prescription id (R and 10-23 of 0-9 A-Z)")
        return False
    return True


def refuse_unknown(p: v.Problems, verb: str) -> None:
    p.add(["input", "prescriptionId"], f"no prescription with this id that you may {verb}")


def check_state(p: v.Problems, kind: machine.Kind, found: Found) -> bool:
    try:
        machine.check(kind, found.state)
    except machine.TransitionRefused as refused:
        p.add(["input", "prescriptionId"], str(refused))
        return False
    return True


def conflict(operation: str) -> GraphQLError:
    return GraphQLError(
        f"{operation}: another transition of this prescription came first; nothing was "
        "written (read it again and decide anew)",
        extensions={"code": TRANSITION_CONFLICT},
    )


async def load(ctx: Any, info: strawberry.Info, created: Created) -> Prescription | None:
    row = await lookups.read_created(ctx, created.source, rx_writers.RX, "rx_id", created.object_id)
    return None if row is None else PRESCRIPTION.build(ctx, row, requested(info, "prescription"))


def event_row(
    call: IdempotentCall,
    ctx: Any,
    found_rx: str,
    kind: machine.Kind,
    before: machine.State | None,
    after: machine.State,
    at: datetime,
    actor_code: str | None,
    facts: str,
) -> Row:
    principal = ctx.principal
    return {
        "event_id": call.new_id("E", 28),
        "rx_id": found_rx,
        "kind": kind.value,
        "from_status": None if before is None else before.value,
        "to_status": after.value,
        "actor_role": principal.role.value,
        "actor_org": principal.org if not principal.is_patient else "PATIENT",
        "actor_code": actor_code,
        "at": at,
        "detail": facts,
        "signature": None,
    }


async def apply(
    ctx: Any,
    call: IdempotentCall,
    found: Found,
    changes: Row,
    event: Row,
) -> None:
    """The transition at the hospital: state and event in one compare-and-set, between its
    intent and outcome in the audit log. A transition that lost a race writes nothing and is
    refused (its intent gets the outcome NOT_APPLIED)."""
    source = found.source

    async def work() -> None:
        outcome = await lookups.ask(
            ctx,
            source,
            lambda e: rx_writers.transition(
                e, found.row["rx_id"], found.row["version"], changes, event
            ),
        )
        if outcome is rx_writers.Outcome.CONFLICT:
            raise conflict(call.operation)

    await call.write(
        ctx,
        Target(
            source.name,
            rx_writers.EVENTS.name,
            "event_id",
            event["event_id"],
            person=found.row["person_ref"],
        ),
        work,
    )


def beijing_now(ctx: Any) -> datetime:
    return v.beijing_now(ctx.now).replace(microsecond=0)


@dataclass
class Decision:
    """What a transition writes: the prescription's changed columns, its new state, the
    acting professional's code (None for a patient) and the event's canonical facts."""

    changes: Row
    after: machine.State
    actor_code: str | None
    facts: str


async def _event_exists(ctx: Any, found: Found, event_id: str) -> bool:
    rows = await lookups.ask(
        ctx, found.source, lambda e: fetch_in(e, rx_writers.EVENTS, "event_id", [event_id])
    )
    return bool(rows)


async def run_transition(
    info: strawberry.Info,
    operation: str,
    key: str,
    rx_id: str,
    canonical_input: Any,
    *,
    kind: machine.Kind,
    verb: str,
    static: Callable[[v.Problems], Any],
    may: Callable[[Found], bool],
    decide: Callable[[v.Problems, Found], Awaitable[Decision | None]],
    then: Callable[[IdempotentCall, Found, Row], Awaitable[None]] | None = None,
) -> PrescriptionPayload:
    """One transition of an existing prescription, in the order of every mutation (replay,
    validation in full, claim, write between intent and outcome, done). ``may`` says whether
    the caller stands in the relation the transition needs (else the no-oracle problem);
    ``decide`` checks the input against the prescription and says what to write; ``then``
    writes what the transition adds at another source (the pharmacy's rows), after the
    hospital's state moved, so a retry that finds its own event goes on to it."""
    ctx = info.context
    p = v.Problems()
    call = IdempotentCall(ctx, operation, key, p)
    if (earlier := await call.earlier(canonical_input)) is not None:
        return PrescriptionPayload(prescription=await load(ctx, info, earlier), replayed=True)
    static(p)
    found = await find(ctx, rx_id) if check_rx_id(p, rx_id) else None
    event_id = call.new_id("E", 28)
    decision: Decision | None = None
    resumed = False
    if found is None or not may(found):
        if not p.at("input", "prescriptionId"):
            refuse_unknown(p, verb)
    elif call.valid_key and await _event_exists(ctx, found, event_id):
        resumed = True  # this key's transition landed before a crash: finish it
    elif check_state(p, kind, found):
        decision = await decide(p, found)
    p.raise_if_any(operation)
    assert found is not None
    if (twin := await call.claim()) is not None:
        return PrescriptionPayload(prescription=await load(ctx, info, twin), replayed=True)
    if resumed:
        event = (
            await lookups.ask(
                ctx, found.source, lambda e: fetch_in(e, rx_writers.EVENTS, "event_id", [event_id])
            )
        )[0]
    else:
        assert decision is not None
        event = event_row(
            call,
            ctx,
            rx_id,
            kind,
            found.state,
            decision.after,
            beijing_now(ctx),
            decision.actor_code,
            decision.facts,
        )
        event["seq"] = found.row["version"] + 1
        event["signature"] = signing.sign_event(ctx, event, found.row["doctor_signature"])
        changes = {**decision.changes, "status": decision.after.value}
        await apply(ctx, call, found, changes, event)
    await anchoring.anchor(ctx, found.source, rx_writers.EVENTS.name, [event["event_id"]])
    if then is not None:
        await then(call, found, event)
    created = Created(found.source.name, rx_id)
    await call.done(created)
    return PrescriptionPayload(prescription=await load(ctx, info, created), replayed=False)
