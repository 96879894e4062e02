"""issuePrescription, reviewPrescription, circulatePrescription, cancelPrescription: the
hospital's and the patient's transitions of an e-prescription (``connectors.domain.
prescriptions`` has the machine; the pharmacy's transitions are in ``dispensing``).

Who may act rests on records other parties keep: a clinician issues only for a bureau visit
of the person at the clinician's hospital within the treating window (as publishTestResult);
a pharmacist reviews only at the prescribing hospital or at the pharmacy the patient chose;
only the patient (their own token) chooses the pharmacy; only the prescribing hospital's
clinicians cancel.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Annotated, Any

import strawberry

from connectors.domain import codes
from connectors.domain import prescriptions as machine
from connectors.sql import rx_writers
from schema import anchoring, signing
from schema.enums import ReviewStatus
from schema.errors import forbidden
from schema.mutations import lookups
from schema.mutations import validation as v
from schema.mutations.idempotent import Created, IdempotentCall, Target
from schema.mutations.results import _check_visit, _ref
from schema.mutations.rx_common import (
    Decision,
    PrescriptionPayload,
    acting_professional,
    beijing_now,
    detail,
    event_row,
    load,
    run_transition,
)
from security.identity.roles import Role

KEY_ARG = strawberry.argument(
    description="Client-chosen key (1-64 of A-Z a-z 0-9 _ -): the same key with the same "
    "input makes the transition once."
)


# -- issue ------------------------------------------------------------------------------------
@strawberry.input(description="One drug of a new e-prescription.")
class PrescriptionItemInput:
    drug_code: str = strawberry.field(
        description="National medical-insurance drug code (医保药品编码, 20 characters)."
    )
    drug_name: str = strawberry.field(description="Drug name, at most 64 characters.")
    quantity: int = strawberry.field(description="Quantity in `unit`, 1-999.")
    unit: str = strawberry.field(description="Packaging unit, at most 8 characters.")
    dosage: str = strawberry.field(description="Dosage instructions, at most 64 characters.")
    days: int = strawberry.field(description="Days of supply, 1-90.")


@strawberry.input(
    description="A new e-prescription. Give the person by exactly one of `personId` and "
    "`idNumber`; `visitId` is the bureau's visit of this person at your hospital."
)
class IssuePrescriptionInput:
    visit_id: strawberry.ID = strawberry.field(
        description="The visit (mdtrt_id) it is written in: a visit of this person at your "
        "hospital within the treating window, as the bureau recorded it."
    )
    items: list[PrescriptionItemInput] = strawberry.field(description="1-5 drugs.")
    person_id: strawberry.ID | None = strawberry.field(default=None, description="personId.")
    id_number: str | None = strawberry.field(
        default=None, description="National citizen ID number, checked by its check digit."
    )
    valid_days: int = strawberry.field(
        default=1,
        description="Days it stays valid for dispensing: 1 (the day of issue, the rule) to 3.",
    )
    doctor_code: str | None = strawberry.field(
        default=None,
        description="The prescribing doctor's national code. It is taken from your token "
        "(claim `professional`); if given, it must be that code: you sign only as yourself.",
    )


def _check_items(p: v.Problems, items: list[PrescriptionItemInput]) -> None:
    if not 1 <= len(items) <= machine.MAX_ITEMS:
        p.add(["input", "items"], f"must list 1-{machine.MAX_ITEMS} drugs")
    seen: set[str] = set()
    for n, item in enumerate(items):
        path = ["input", "items", n]
        if problem := codes.validate_drug_code(item.drug_code):
            p.add([*path, "drugCode"], problem)
        elif item.drug_code in seen:
            p.add([*path, "drugCode"], "is listed twice")
        seen.add(item.drug_code)
        v.text(p, [*path, "drugName"], item.drug_name, 64)
        v.text(p, [*path, "unit"], item.unit, 8)
        v.text(p, [*path, "dosage"], item.dosage, 64)
        if not 1 <= item.quantity <= 999:
            p.add([*path, "quantity"], "must be 1-999")
        if not 1 <= item.days <= 90:
            p.add([*path, "days"], "must be 1-90")


def _issue_canonical(ctx: Any, i: IssuePrescriptionInput) -> dict[str, Any]:
    data = strawberry.asdict(i)
    if i.id_number is not None:  # keep no guessable ID number in the stored hash
        data["id_number"] = ctx.indexer.id_number(i.id_number)
    return data


async def issue_prescription(
    info: strawberry.Info,
    idempotency_key: Annotated[str, KEY_ARG],
    input: Annotated[IssuePrescriptionInput, strawberry.argument(description="The prescription.")],
) -> PrescriptionPayload:
    ctx = info.context
    operation = "issuePrescription"
    principal = ctx.principal
    source = lookups.hospital_of(ctx, principal.org)
    if principal.role != Role.CLINICIAN or source is None:
        raise forbidden(f"{operation} is for clinicians of a hospital that is a source")
    doctor = acting_professional(ctx, operation, input.doctor_code, "doctorCode")
    p = v.Problems()
    call = IdempotentCall(ctx, operation, idempotency_key, p)
    if (earlier := await call.earlier(_issue_canonical(ctx, input))) is not None:
        return PrescriptionPayload(prescription=await load(ctx, info, earlier), replayed=True)
    if (input.person_id is None) == (input.id_number is None):
        p.add(["input", "personId"], "give exactly one of personId and idNumber")
    elif input.person_id is not None:
        v.person_id(p, ["input", "personId"], str(input.person_id))
    elif problem := codes.validate_id_number(input.id_number or ""):
        p.add(["input", "idNumber"], problem)
    if not 1 <= input.valid_days <= machine.MAX_VALID_DAYS:
        p.add(["input", "validDays"], f"must be 1-{machine.MAX_VALID_DAYS}")
    v.source_id(p, ["input", "visitId"], str(input.visit_id))
    _check_items(p, input.items)
    ref = _ref(ctx, p, input)
    await _check_visit(ctx, p, input, ref, source)
    p.raise_if_any(operation)
    assert ref is not None
    if (twin := await call.claim()) is not None:
        return PrescriptionPayload(prescription=await load(ctx, info, twin), replayed=True)

    rx_id = call.new_id("RX", 24)
    now = beijing_now(ctx)
    # 当日有效: valid to the end of the day of issue, or of the last day allowed.
    expires = now.replace(hour=0, minute=0, second=0) + timedelta(days=input.valid_days)
    rx = {
        "rx_id": rx_id,
        "mdtrt_id": str(input.visit_id),
        "person_ref": ref,
        "institution_code": source.spec.institution,
        "doctor_code": doctor,
        "doctor_signature": "",
        "issued_at": now,
        "expires_at": expires,
        "status": machine.State.PENDING_REVIEW.value,
        "version": 1,
        "review_status": ReviewStatus.PENDING.value,
        "reviewed_by": None,
        "reviewed_at": None,
        "circulated_to": None,
    }
    items = [
        {
            "item_id": f"{rx_id}{n:02d}",
            "rx_id": rx_id,
            "drug_code": item.drug_code,
            "drug_name": item.drug_name.strip(),
            "quantity": item.quantity,
            "unit": item.unit.strip(),
            "dosage": item.dosage.strip(),
            "days": item.days,
        }
        for n, item in enumerate(input.items, 1)
    ]
    event = event_row(
        call,
        ctx,
        rx_id,
        machine.Kind.ISSUED,
        None,
        machine.State.PENDING_REVIEW,
        now,
        doctor,
        detail(validDays=input.valid_days, items=len(items)),
    )
    event["seq"] = 1
    rx["doctor_signature"] = signing.sign_prescription(ctx, rx, items)
    event["signature"] = signing.sign_event(ctx, event, rx["doctor_signature"])
    await call.write(
        ctx,
        Target(source.name, rx_writers.RX.name, "rx_id", rx_id, person=ref),
        lambda: lookups.ask(
            ctx, source, lambda e: rx_writers.write_prescription(e, rx, items, event)
        ),
    )
    await anchoring.anchor(ctx, source, rx_writers.RX.name, [rx_id])
    await anchoring.anchor(ctx, source, rx_writers.EVENTS.name, [event["event_id"]])
    created = Created(source.name, rx_id)
    await call.done(created)
    return PrescriptionPayload(prescription=await load(ctx, info, created), replayed=False)


# -- review -----------------------------------------------------------------------------------
@strawberry.enum(description="A pharmacist's review decision (审方结论).")
class ReviewDecision(Enum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


@strawberry.input(description="A pharmacist's review (药师审方) of a pending prescription.")
class ReviewPrescriptionInput:
    prescription_id: strawberry.ID = strawberry.field(description="The prescription.")
    decision: ReviewDecision = strawberry.field(description="APPROVED or REJECTED.")
    reason: str | None = strawberry.field(
        default=None, description="Required when REJECTED (at most 200 characters)."
    )
    pharmacist_code: str | None = strawberry.field(
        default=None,
        description="The reviewing pharmacist's code. It is taken from your token (claim "
        "`professional`); if given, it must be that code: you sign only as yourself.",
    )


async def review_prescription(
    info: strawberry.Info,
    idempotency_key: Annotated[str, KEY_ARG],
    input: Annotated[ReviewPrescriptionInput, strawberry.argument(description="The review.")],
) -> PrescriptionPayload:
    ctx = info.context
    principal = ctx.principal
    if principal.role != Role.PHARMACIST:
        raise forbidden("reviewPrescription is for pharmacists")
    pharmacist = acting_professional(
        ctx, "reviewPrescription", input.pharmacist_code, "pharmacistCode"
    )
    reason: list[str | None] = [None]

    def static(p: v.Problems) -> None:
        required = input.decision is ReviewDecision.REJECTED
        reason[0] = v.text(p, ["input", "reason"], input.reason, 200, required=required)

    def may(found: Any) -> bool:
        # The prescribing hospital's pharmacists, or those of the pharmacy the patient chose.
        return principal.org in (found.row["institution_code"], found.row["circulated_to"])

    async def decide(p: v.Problems, found: Any) -> Decision:
        approved = input.decision is ReviewDecision.APPROVED
        now = beijing_now(ctx)
        return Decision(
            changes={
                "review_status": input.decision.value,
                "reviewed_by": pharmacist,
                "reviewed_at": now,
            },
            after=machine.target(machine.Kind.REVIEWED, found.state, approved=approved),
            actor_code=pharmacist,
            facts=detail(decision=input.decision.value, reason=reason[0]),
        )

    return await run_transition(
        info,
        "reviewPrescription",
        idempotency_key,
        str(input.prescription_id),
        strawberry.asdict(input),
        kind=machine.Kind.REVIEWED,
        verb="review",
        static=static,
        may=may,
        decide=decide,
    )


# -- circulation ------------------------------------------------------------------------------
@strawberry.input(description="The patient's choice of designated pharmacy (处方流转).")
class CirculatePrescriptionInput:
    prescription_id: strawberry.ID = strawberry.field(description="The prescription.")
    pharmacy_code: str = strawberry.field(
        description="A designated pharmacy of this federation (P + region + five digits)."
    )


async def circulate_prescription(
    info: strawberry.Info,
    idempotency_key: Annotated[str, KEY_ARG],
    input: Annotated[CirculatePrescriptionInput, strawberry.argument(description="The choice.")],
) -> PrescriptionPayload:
    ctx = info.context
    principal = ctx.principal
    if not principal.is_patient or not principal.person_ref:
        raise forbidden("circulatePrescription is for the patient: they choose the pharmacy")

    def static(p: v.Problems) -> None:
        path = ["input", "pharmacyCode"]
        if problem := codes.validate_pharmacy(input.pharmacy_code):
            p.add(path, problem)
        elif not any(
            s.spec.institution == input.pharmacy_code for s in ctx.registry.of_kind("pharmacy")
        ):
            p.add(path, "is not a designated pharmacy of this federation")

    def may(found: Any) -> bool:
        return found.row["person_ref"] == principal.person_ref

    async def decide(p: v.Problems, found: Any) -> Decision | None:
        if found.row["circulated_to"] is not None:
            p.add(["input", "prescriptionId"], "was circulated already (once only)")
            return None
        return Decision(
            changes={"circulated_to": input.pharmacy_code},
            after=machine.target(machine.Kind.CIRCULATED, found.state),
            actor_code=None,
            facts=detail(pharmacy=input.pharmacy_code),
        )

    return await run_transition(
        info,
        "circulatePrescription",
        idempotency_key,
        str(input.prescription_id),
        strawberry.asdict(input),
        kind=machine.Kind.CIRCULATED,
        verb="circulate",
        static=static,
        may=may,
        decide=decide,
    )


# -- cancellation -----------------------------------------------------------------------------
@strawberry.input(description="Withdrawing a prescription before it is dispensed.")
class CancelPrescriptionInput:
    prescription_id: strawberry.ID = strawberry.field(description="The prescription.")
    reason: str = strawberry.field(description="Why (at most 200 characters).")
    doctor_code: str | None = strawberry.field(
        default=None,
        description="The cancelling doctor's national code. It is taken from your token "
        "(claim `professional`); if given, it must be that code.",
    )


async def cancel_prescription(
    info: strawberry.Info,
    idempotency_key: Annotated[str, KEY_ARG],
    input: Annotated[CancelPrescriptionInput, strawberry.argument(description="The cancel.")],
) -> PrescriptionPayload:
    ctx = info.context
    principal = ctx.principal
    if principal.role != Role.CLINICIAN:
        raise forbidden("cancelPrescription is for clinicians of the prescribing hospital")
    doctor = acting_professional(ctx, "cancelPrescription", input.doctor_code, "doctorCode")
    reason: list[str | None] = [None]

    def static(p: v.Problems) -> None:
        reason[0] = v.text(p, ["input", "reason"], input.reason, 200)

    def may(found: Any) -> bool:
        return found.row["institution_code"] == principal.org

    async def decide(p: v.Problems, found: Any) -> Decision:
        return Decision(
            changes={},
            after=machine.target(machine.Kind.CANCELLED, found.state),
            actor_code=doctor,
            facts=detail(reason=reason[0]),
        )

    return await run_transition(
        info,
        "cancelPrescription",
        idempotency_key,
        str(input.prescription_id),
        strawberry.asdict(input),
        kind=machine.Kind.CANCELLED,
        verb="cancel",
        static=static,
        may=may,
        decide=decide,
    )
