"""`prescriptionTrace`: the whole chain of one e-prescription, issue → review → circulation →
dispensing → delivery → settlement, each step with who (the professional's code), when, where
(the acting organisation), how much (the bill's split, the delivery fee) and its signature.

Every step is built through the enforcement point like any row: a step carries the
prescription's person and its relation columns (prescribing institution, chosen pharmacy), so
the patient (SELF), the pharmacy the patient chose (PHARMACY), the prescribing hospital
(TREATING) and the fund supervisor of the hospital's region (REGION) each see what the policy
lets them (``TraceStep`` in the catalogue; the fund supervisor's rule names the fields).
The settlement step is the bureau's settlement that names the prescription's dispensing
(``settlements.dispensing_id``, checked against the pharmacy's row by recordSettlement): a
key, not a match of person, day, pharmacy and total.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry

from connectors.domain import codes
from connectors.domain.prescriptions import dispensing_id_of, event_document
from connectors.fanout import fan_out
from connectors.sql import rx_writers
from connectors.sql.models import bureau
from connectors.sql.queries import Row
from schema import anchoring, signing
from schema.enums import PrescriptionState, RecordIntegrity, enum_or_none
from schema.projection import F, Projection
from schema.selection import requested
from schema.types.common import field, yuan
from schema.types.prescriptions import rx_rows
from schema.types.records import PRESCRIPTION, Prescription

SETTLED = "SETTLED"


def _detail(row: Row) -> dict[str, Any]:
    return json.loads(row["detail"]) if row.get("detail") else {}


def _fact(name: str, convert: Any = None) -> Any:
    def read(_ctx: Any, row: Row) -> Any:
        value = row["_facts"].get(name)
        return value if value is None or convert is None else convert(value)

    return read


def _plain(column: str, convert: Any = None) -> Any:
    def read(_ctx: Any, row: Row) -> Any:
        value = row.get(column)
        return value if value is None or convert is None else convert(value)

    return read


def _signature_valid(ctx: Any, row: Row) -> bool | None:
    if row["kind"] == SETTLED or row.get("signature") is None:
        return None  # a settlement, or the patient's own (unsigned) step
    document = event_document(row["_event"], row["_rx_signature"])
    return signing.keys(ctx).verify(row["signature"], document).valid


@strawberry.type(description="One step of an e-prescription's chain.")
class TraceStep:
    seq: int | None = field("Order in the chain (1 is the issue; the settlement last).")
    kind: str | None = field(
        "ISSUED, REVIEWED, CIRCULATED, DISPENSED, SHIPPED, DELIVERED, CANCELLED or SETTLED."
    )
    at: datetime | None = field("When (China Standard Time).")
    from_status: PrescriptionState | None = field("The state it left.")
    to_status: PrescriptionState | None = field("The state it reached.")
    actor_role: str | None = field("Who acted: the role.")
    actor_org: str | None = field("Where: the acting organisation (PATIENT for the patient).")
    actor_code: str | None = field("Who: the doctor's or pharmacist's national code.")
    decision: str | None = field("A review's decision.")
    reason: str | None = field("A rejection's or cancellation's reason.")
    pharmacy: str | None = field("The pharmacy chosen or dispensing.")
    cert_type: str | None = field("The credential checked at dispensing (mdtrt_cert_type).")
    total: Decimal | None = field("How much: the bill, yuan (delivery fee not included).")
    fund_pay: Decimal | None = field("The pooled fund's share, yuan.")
    account_pay: Decimal | None = field("The personal account's share, yuan.")
    cash_pay: Decimal | None = field("Paid by the patient, yuan.")
    delivery_fee: Decimal | None = field("The delivery fee, yuan: always the patient's.")
    carrier: str | None = field("The carrier of a delivery.")
    tracking_no: str | None = field("The carrier's tracking number.")
    signature: str | None = field("The step's signature (docs/prescriptions.md).")
    signature_valid: bool | None = field(
        "Whether the signature is its actor's registered key's over the step (null: unsigned)."
    )
    _row: strawberry.Private[Row] = None
    _ref: strawberry.Private[str] = None

    @strawberry.field(
        description="The step against the records log: VERIFIED, CHANGED, UNANCHORED."
    )
    async def integrity(self, info: strawberry.Info) -> RecordIntegrity | None:
        info.context.check("TraceStep", "integrity", self._ref, self._row)
        if self._row["kind"] == SETTLED:
            return await anchoring.integrity(info, "settlements", self._row["_record"])
        return await anchoring.integrity(info, "e_prescription_events", self._row["_record"])


def _yuan_fact(name: str) -> Any:
    return _fact(name, yuan)


TRACE_STEP = Projection(
    "TraceStep",
    TraceStep,
    [
        F("seq", "seq", _plain("seq")),
        F("kind", "kind", _plain("kind")),
        F("at", "at", _plain("at")),
        F(
            "fromStatus",
            "from_status",
            _plain("from_status", lambda v: enum_or_none(PrescriptionState, v)),
        ),
        F(
            "toStatus",
            "to_status",
            _plain("to_status", lambda v: enum_or_none(PrescriptionState, v)),
        ),
        F("actorRole", "actor_role", _plain("actor_role")),
        F("actorOrg", "actor_org", _plain("actor_org")),
        F("actorCode", "actor_code", _plain("actor_code")),
        F("decision", "decision", _fact("decision")),
        F("reason", "reason", _fact("reason")),
        F("pharmacy", "pharmacy", _fact("pharmacy")),
        F("certType", "cert_type", _fact("certType")),
        F("total", "total", _yuan_fact("totalFen")),
        F("fundPay", "fund_pay", _yuan_fact("fundPayFen")),
        F("accountPay", "account_pay", _yuan_fact("accountPayFen")),
        F("cashPay", "cash_pay", _yuan_fact("cashPayFen")),
        F("deliveryFee", "delivery_fee", _yuan_fact("deliveryFeeFen")),
        F("carrier", "carrier", _fact("carrier")),
        F("trackingNo", "tracking_no", _fact("trackingNo")),
        F("signature", "signature", _plain("signature")),
        F("signatureValid", "signature_valid", _signature_valid),
    ],
    lambda row: row["person_ref"],
)


@strawberry.type(description="An e-prescription's whole chain (处方全流程追溯).")
class PrescriptionTrace:
    prescription: Prescription | None = strawberry.field(
        description="The prescription, as `prescription` returns it."
    )
    steps: list[TraceStep] = strawberry.field(
        description="Its steps in order, each as the policy lets the caller read it; steps whose "
        "`kind` the caller may not read are left out."
    )


def _relation_columns(rx: Row) -> Row:
    """What every step carries from its prescription: the person, the relation columns and
    the source, so each step relates to the caller as the prescription does."""
    return {
        "person_ref": rx["person_ref"],
        "institution_code": rx["institution_code"],
        "circulated_to": rx["circulated_to"],
        "_source": rx["_source"],
    }


def _step_rows(rx: Row, events: list[Row]) -> list[Row]:
    out = []
    for event in events:
        record = {**event, "_source": rx["_source"]}
        out.append(
            {
                **event,
                **_relation_columns(rx),
                "_facts": _detail(event),
                "_event": event,
                "_record": record,
                "_rx_signature": rx["doctor_signature"],
            }
        )
    return out


async def _settlement_rows(info: strawberry.Info, rx: Row, events: list[Row]) -> list[Row]:
    """The bureau's settlement that names this prescription's dispensing."""
    ctx = info.context
    dispensed = next((e for e in events if e["kind"] == "DISPENSED"), None)
    if dispensed is None:
        return []
    facts = _detail(dispensed)
    pharmacy = facts.get("pharmacy") or rx["circulated_to"]
    province = codes.province_of(codes.region_of_institution(pharmacy))
    source = next((s for s in ctx.registry.of_kind("bureau") if s.spec.region == province), None)
    if source is None:
        return []
    table = bureau.Settlement.__table__
    found, failures = await fan_out(
        [source],
        lambda s: s.fetch_in(table, "dispensing_id", [dispensing_id_of(rx["rx_id"])]),
        ctx.deadline,
    )
    ctx.note_failures(failures)  # a bureau that does not answer: the chain without it, named
    if failures:
        ctx.attribute_failures(info)
    rows = found.get(source.name, [])
    out = []
    for s in rows:
        # The key is the pharmacy's dispensing id; the bureau's row must still be this
        # person's at this pharmacy (a row that says otherwise is not shown as this chain's).
        if s["person_ref"] == rx["person_ref"] and s["institution_code"] == pharmacy:
            record = {**s, "_source": source.name}
            out.append(
                {
                    **_relation_columns(rx),
                    "seq": len(events) + 1 + len(out),
                    "kind": SETTLED,
                    "at": s["setl_time"],
                    "from_status": None,
                    "to_status": None,
                    "actor_role": "insurance_agency",
                    "actor_org": source.spec.region,
                    "actor_code": None,
                    "signature": None,
                    "_facts": {
                        "totalFen": s["total_fen"],
                        "fundPayFen": s["fund_pay_fen"],
                        "accountPayFen": s["acct_pay_fen"],
                        "cashPayFen": s["cash_pay_fen"],
                        "pharmacy": pharmacy,
                    },
                    "_record": record,
                }
            )
    return out


@strawberry.type
class TraceQuery:
    @strawberry.field(
        description="The chain of one e-prescription: issue, review, circulation, dispensing, "
        "delivery, settlement; who, when, where, how much, each step's signature. Null when "
        "no hospital holds it or the caller may read none of it."
    )
    async def prescription_trace(
        self, info: strawberry.Info, prescription_id: strawberry.ID
    ) -> PrescriptionTrace | None:
        ctx = info.context
        rows = await rx_rows(info, str(prescription_id))
        if not rows:
            return None
        rx = rows[0]
        await ctx.prepare_relations([rx["person_ref"]])
        source = ctx.registry.get(rx["_source"])
        events = sorted(
            await source.fetch_in(rx_writers.EVENTS, "rx_id", [rx["rx_id"]]),
            key=lambda e: e["seq"],
        )
        steps = _step_rows(rx, events) + await _settlement_rows(info, rx, events)
        visible = TRACE_STEP.keep_visible(ctx, steps)
        if not visible and not PRESCRIPTION.visible(ctx, rx):
            return None
        wanted = requested(info, "prescription")
        return PrescriptionTrace(
            prescription=PRESCRIPTION.build(ctx, rx, wanted) if wanted else None,
            steps=TRACE_STEP.build_all(ctx, visible, requested(info, "steps")),
        )
