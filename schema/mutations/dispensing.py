"""dispensePrescription, shipPrescription, deliverPrescription: the pharmacy's transitions of
an e-prescription. Only a pharmacist of the pharmacy the patient circulated it to (and that
pharmacy a source of this federation) acts; each moves the state at the prescribing hospital
first (the compare-and-set that makes a dispensing happen once), then writes the pharmacy's
own row: the dispensing with its items and the patient's credential type (the real-name
check), or the delivery event with the carrier's tracking number. The delivery fee is the
patient's: it is never part of the fund's share of the bill.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from connectors.domain import prescriptions as machine
from connectors.registry import Source
from connectors.sql import rx_writers
from connectors.sql.models import pharmacy
from connectors.sql.queries import Row, fetch_in
from schema import anchoring
from schema.errors import forbidden
from schema.mutations import lookups
from schema.mutations import validation as v
from schema.mutations.idempotent import IdempotentCall, Target
from schema.mutations.prescriptions import KEY_ARG
from schema.mutations.rx_common import (
    Decision,
    Found,
    PrescriptionPayload,
    acting_professional,
    beijing_now,
    detail,
    run_transition,
)
from security import failpoints
from security.identity.roles import Role

CERT_TYPES = {"01": "e-credential", "02": "ID card", "03": "social-security card"}
DISPENSINGS = pharmacy.Dispensing.__table__
DELIVERIES = pharmacy.Delivery.__table__


def _pharmacy_source(ctx: Any, operation: str) -> Source:
    principal = ctx.principal
    source = next(
        (s for s in ctx.registry.of_kind("pharmacy") if s.spec.institution == principal.org),
        None,
    )
    if principal.role != Role.PHARMACIST or source is None:
        raise forbidden(f"{operation} is for pharmacists of a pharmacy that is a source")
    return source


def _ours(ctx: Any) -> Any:
    return lambda found: found.row["circulated_to"] == ctx.principal.org


# -- dispensing -------------------------------------------------------------------------------
@strawberry.input(description="One drug handed out, within what was prescribed.")
class DispensedItemInput:
    drug_code: str = strawberry.field(description="A drug code of the prescription.")
    quantity: int = strawberry.field(description="At least 1, at most the prescribed quantity.")
    amount: Decimal = strawberry.field(description="What it cost, in yuan.")


@strawberry.input(
    description="A dispensing (调剂发药) of an approved, circulated, unexpired prescription. "
    "`fundPay + accountPay + cashPay` is the items' total; a delivery fee is on top, the "
    "patient's."
)
class DispensePrescriptionInput:
    prescription_id: strawberry.ID = strawberry.field(description="The prescription.")
    cert_type: str = strawberry.field(
        description="The patient's credential checked at the counter (mdtrt_cert_type): "
        "01 e-credential, 02 ID card, 03 social-security card."
    )
    items: list[DispensedItemInput] = strawberry.field(description="The drugs handed out.")
    fund_pay: Decimal = strawberry.field(description="Pooled fund's share, yuan.")
    account_pay: Decimal = strawberry.field(description="Personal account's share, yuan.")
    cash_pay: Decimal = strawberry.field(description="Paid by the patient, yuan.")
    home_delivery: bool = strawberry.field(
        default=False, description="Sent to the patient (then shipPrescription, deliver…)."
    )
    delivery_fee: Decimal = strawberry.field(
        default=Decimal(0), description="Delivery fee, yuan, paid by the patient; 0 without."
    )
    pharmacist_code: str | None = strawberry.field(
        default=None,
        description="The dispensing pharmacist's code. It is taken from your token (claim "
        "`professional`); if given, it must be that code: you sign only as yourself.",
    )


def _check_dispense(
    p: v.Problems, i: DispensePrescriptionInput, prescribed: list[Row]
) -> dict[str, Any] | None:
    by_code = {r["drug_code"]: r for r in prescribed}
    total = 0
    lines = []
    if not i.items:
        p.add(["input", "items"], "must list at least one drug")
    seen: set[str] = set()
    for n, item in enumerate(i.items):
        path = ["input", "items", n]
        row = by_code.get(item.drug_code)
        if row is None:
            p.add([*path, "drugCode"], "is not a drug of this prescription")
            continue
        if item.drug_code in seen:
            p.add([*path, "drugCode"], "is listed twice")
        seen.add(item.drug_code)
        if not 1 <= item.quantity <= row["quantity"]:
            p.add([*path, "quantity"], f"must be 1-{row['quantity']} (what was prescribed)")
        amount = v.money(p, [*path, "amount"], item.amount)
        if amount is not None:
            total += amount
        lines.append((row, item.quantity, amount or 0))
    shares = [
        v.money(p, ["input", name], value)
        for name, value in (
            ("fundPay", i.fund_pay),
            ("accountPay", i.account_pay),
            ("cashPay", i.cash_pay),
        )
    ]
    fee = v.money(p, ["input", "deliveryFee"], i.delivery_fee)
    if not i.home_delivery and fee:
        p.add(["input", "deliveryFee"], "must be 0 without home delivery")
    if None not in shares and sum(shares) != total:  # type: ignore[arg-type]
        p.add(["input", "cashPay"], "fundPay + accountPay + cashPay must equal the items' total")
    if p.items:
        return None
    return {"lines": lines, "total": total, "shares": shares, "fee": fee or 0}


async def dispense_prescription(
    info: strawberry.Info,
    idempotency_key: Annotated[str, KEY_ARG],
    input: Annotated[DispensePrescriptionInput, strawberry.argument(description="What.")],
) -> PrescriptionPayload:
    ctx = info.context
    source = _pharmacy_source(ctx, "dispensePrescription")
    pharmacist = acting_professional(
        ctx, "dispensePrescription", input.pharmacist_code, "pharmacistCode"
    )
    checked: dict[str, Any] = {}

    def static(p: v.Problems) -> None:
        if input.cert_type not in CERT_TYPES:
            p.add(["input", "certType"], "must be 01, 02 or 03 (mdtrt_cert_type)")

    async def decide(p: v.Problems, found: Found) -> Decision | None:
        if beijing_now(ctx) >= found.row["expires_at"]:
            p.add(["input", "prescriptionId"], "has expired: it can no longer be dispensed")
            return None
        prescribed = await lookups.ask(
            ctx,
            found.source,
            lambda e: fetch_in(e, rx_writers.ITEMS, "rx_id", [found.row["rx_id"]]),
        )
        result = _check_dispense(p, input, prescribed)
        if result is None:
            return None
        checked.update(result)
        fund, acct, cash = result["shares"]
        return Decision(
            changes={},
            after=machine.target(machine.Kind.DISPENSED, found.state),
            actor_code=pharmacist,
            facts=detail(
                pharmacy=ctx.principal.org,
                certType=input.cert_type,
                totalFen=result["total"],
                fundPayFen=fund,
                accountPayFen=acct,
                cashPayFen=cash,
                homeDelivery=input.home_delivery,
                deliveryFeeFen=result["fee"],
                # What was handed out, so the event alone can finish the pharmacy's row
                # after a crash (reconcile), not only the client's retry.
                items=[
                    {
                        "drugCode": item.drug_code,
                        "quantity": item.quantity,
                        "amountFen": int(item.amount.scaleb(2)),
                    }
                    for item in input.items
                ],
            ),
        )

    async def then(call: IdempotentCall, found: Found, event: Row) -> None:
        prescribed = await lookups.ask(
            ctx,
            found.source,
            lambda e: fetch_in(e, rx_writers.ITEMS, "rx_id", [found.row["rx_id"]]),
        )
        row, items = dispensing_of(found.row, event, prescribed)
        # The hospital is DISPENSED now; a crash here leaves the pharmacy's row to reconcile.
        await failpoints.reach("rx.dispense.before_pharmacy")
        await call.write(
            ctx,
            Target(
                source.name,
                DISPENSINGS.name,
                "dispensing_id",
                row["dispensing_id"],
                person=found.row["person_ref"],
            ),
            lambda: lookups.ask(ctx, source, lambda e: rx_writers.write_dispensing(e, row, items)),
        )
        await anchoring.anchor(ctx, source, DISPENSINGS.name, [row["dispensing_id"]])

    return await run_transition(
        info,
        "dispensePrescription",
        idempotency_key,
        str(input.prescription_id),
        strawberry.asdict(input),
        kind=machine.Kind.DISPENSED,
        verb="dispense",
        static=static,
        may=_ours(ctx),
        decide=decide,
        then=then,
    )


def _facts(event: Row) -> dict[str, Any]:
    return json.loads(event["detail"])


def dispensing_of(rx: Row, event: Row, prescribed: list[Row]) -> tuple[Row, list[Row]]:
    """The pharmacy's dispensing row and items, from the hospital's DISPENSED event (its
    signed facts) and the prescription's items: what the request writes, and what reconcile
    writes when a crash left the hospital DISPENSED without the pharmacy's row."""
    facts = _facts(event)
    dispensing_id = machine.dispensing_id_of(rx["rx_id"])
    by_code = {r["drug_code"]: r for r in prescribed}
    row = {
        "dispensing_id": dispensing_id,
        "rx_id": rx["rx_id"],
        "person_ref": rx["person_ref"],
        "pharmacy_code": facts["pharmacy"],
        "pharmacist_code": event["actor_code"],
        "dispensed_at": event["at"],
        "total_fen": facts["totalFen"],
        "fund_pay_fen": facts["fundPayFen"],
        "acct_pay_fen": facts["accountPayFen"],
        "cash_pay_fen": facts["cashPayFen"],
        "delivered": facts["homeDelivery"],
        "delivery_fee_fen": facts["deliveryFeeFen"],
        "cert_type": facts["certType"],
    }
    items = [
        {
            "item_id": f"{dispensing_id}{n:02d}",
            "dispensing_id": dispensing_id,
            "drug_code": item["drugCode"],
            "drug_name": by_code[item["drugCode"]]["drug_name"],
            "quantity": item["quantity"],
            "unit": by_code[item["drugCode"]]["unit"],
            "amount_fen": item["amountFen"],
        }
        for n, item in enumerate(facts["items"], 1)
    ]
    return row, items


# -- delivery ---------------------------------------------------------------------------------
@strawberry.input(description="A delivery event of a dispensing sent to the patient.")
class DeliveryInput:
    prescription_id: strawberry.ID = strawberry.field(description="The prescription.")
    carrier: str = strawberry.field(description="The carrier's name, at most 32 characters.")
    tracking_no: str = strawberry.field(
        description="The carrier's tracking number (运单号), 6-40 of A-Z a-z 0-9 -."
    )


async def _delivery(
    info: strawberry.Info, operation: str, key: str, input: DeliveryInput, kind: machine.Kind
) -> PrescriptionPayload:
    ctx = info.context
    source = _pharmacy_source(ctx, operation)
    carrier: list[str | None] = [None]
    dispensing: dict[str, Any] = {}

    def static(p: v.Problems) -> None:
        carrier[0] = v.text(p, ["input", "carrier"], input.carrier, 32)
        tn = input.tracking_no
        if not (6 <= len(tn) <= 40 and all(c.isascii() and (c.isalnum() or c == "-") for c in tn)):
            p.add(["input", "trackingNo"], "must be 6-40 of A-Z a-z 0-9 -")

    async def decide(p: v.Problems, found: Found) -> Decision | None:
        rows = await lookups.ask(
            ctx, source, lambda e: fetch_in(e, DISPENSINGS, "rx_id", [found.row["rx_id"]])
        )
        if not rows or not rows[0]["delivered"]:
            p.add(["input", "prescriptionId"], "was not dispensed for home delivery here")
            return None
        dispensing.update(rows[0])
        if kind is machine.Kind.DELIVERED:
            shipped = await lookups.ask(
                ctx, source, lambda e: fetch_in(e, DELIVERIES, "rx_id", [found.row["rx_id"]])
            )
            if not any(r["tracking_no"] == input.tracking_no for r in shipped):
                p.add(["input", "trackingNo"], "is not the tracking number it was shipped with")
                return None
        return Decision(
            changes={},
            after=machine.target(kind, found.state),
            actor_code=None,
            facts=detail(
                carrier=carrier[0],
                trackingNo=input.tracking_no,
                feeFen=rows[0]["delivery_fee_fen"],
                paidBy="PATIENT",
            ),
        )

    async def then(call: IdempotentCall, found: Found, event: Row) -> None:
        facts = _facts(event)
        delivery_id = "S" + event["event_id"][1:]
        if not dispensing:
            rows = await lookups.ask(
                ctx, source, lambda e: fetch_in(e, DISPENSINGS, "rx_id", [found.row["rx_id"]])
            )
            dispensing.update(rows[0])
        row = {
            "delivery_id": delivery_id,
            "dispensing_id": dispensing["dispensing_id"],
            "rx_id": found.row["rx_id"],
            "person_ref": found.row["person_ref"],
            "pharmacy_code": ctx.principal.org,
            "event": kind.value,
            "carrier": facts["carrier"],
            "tracking_no": facts["trackingNo"],
            # The fee is charged once, with the shipment; the patient pays it.
            "fee_fen": facts["feeFen"] if kind is machine.Kind.SHIPPED else 0,
            "paid_by": "PATIENT",
            "at": event["at"],
        }
        await call.write(
            ctx,
            Target(
                source.name,
                DELIVERIES.name,
                "delivery_id",
                delivery_id,
                person=found.row["person_ref"],
            ),
            lambda: lookups.ask(ctx, source, lambda e: rx_writers.write_delivery(e, row)),
        )
        await anchoring.anchor(ctx, source, DELIVERIES.name, [delivery_id])

    return await run_transition(
        info,
        operation,
        key,
        str(input.prescription_id),
        strawberry.asdict(input),
        kind=kind,
        verb="deliver",
        static=static,
        may=_ours(ctx),
        decide=decide,
        then=then,
    )


async def ship_prescription(
    info: strawberry.Info,
    idempotency_key: Annotated[str, KEY_ARG],
    input: Annotated[DeliveryInput, strawberry.argument(description="The shipment.")],
) -> PrescriptionPayload:
    return await _delivery(info, "shipPrescription", idempotency_key, input, machine.Kind.SHIPPED)


async def deliver_prescription(
    info: strawberry.Info,
    idempotency_key: Annotated[str, KEY_ARG],
    input: Annotated[DeliveryInput, strawberry.argument(description="The hand-over.")],
) -> PrescriptionPayload:
    return await _delivery(
        info, "deliverPrescription", idempotency_key, input, machine.Kind.DELIVERED
    )
