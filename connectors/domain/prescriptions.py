"""The e-prescription workflow (电子处方流转) as a state machine: its states, its transitions,
and which state each transition starts from. Pure: no I/O, no roles (who may make a
transition is the mutation's business, ``schema.mutations.prescriptions``).

Where the rows are (readers such as fund supervision can rely on these names):

- the prescribing hospital's source: ``e_prescriptions`` (the original the doctor signed and
  its current ``status``), ``e_prescription_items``, ``e_prescription_events`` (one row per
  transition, ``seq`` 1, 2, …, ``kind`` one of :class:`Kind`, ``from_status``/``to_status``
  one of :class:`State`, ``detail`` canonical JSON);
- the pharmacy's source: ``dispensings`` (``rx_id`` names the prescription, ``cert_type`` the
  patient's credential shown, the real-name check) with ``dispensing_items``, and
  ``rx_deliveries`` (SHIPPED, DELIVERED; the fee ``paid_by`` PATIENT).

The machine::

    issue ──> PENDING_REVIEW ──review APPROVED──> APPROVED ──dispense──> DISPENSED
                  │    │                            │    │                  │ ship
                  │    └─review REJECTED─> REJECTED │    │                  v
                  │                                 │    │               SHIPPED
                  └──────cancel──> CANCELLED <──────┘    │                  │ deliver
                                                         │                  v
    circulate (the patient chooses a pharmacy) keeps the state: allowed once, in
    PENDING_REVIEW or APPROVED; a dispensing needs it.                  DELIVERED

A prescription is *effective* only once APPROVED by a pharmacist (never by its prescriber);
it is dispensed at most once, only before ``expires_at``, only by the pharmacy it was
circulated to. REJECTED, CANCELLED and DELIVERED are final (a dispensing without home
delivery stays DISPENSED, which is final for it).
"""

from __future__ import annotations

import json
from datetime import timedelta
from enum import Enum
from typing import Any

from security.errors import MedfedError


class State(Enum):
    PENDING_REVIEW = "PENDING_REVIEW"  # issued and signed, awaiting a pharmacist's review
    APPROVED = "APPROVED"  # reviewed and approved: effective
    REJECTED = "REJECTED"  # reviewed and rejected (with a reason): never effective
    DISPENSED = "DISPENSED"  # dispensed once by the pharmacy it was circulated to
    SHIPPED = "SHIPPED"  # handed to a carrier (tracking number) for home delivery
    DELIVERED = "DELIVERED"  # the carrier handed it to the patient
    CANCELLED = "CANCELLED"  # withdrawn before dispensing


class Kind(Enum):
    """What an event row records (``e_prescription_events.kind``)."""

    ISSUED = "ISSUED"
    REVIEWED = "REVIEWED"
    CIRCULATED = "CIRCULATED"
    DISPENSED = "DISPENSED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


FINAL = frozenset({State.REJECTED, State.CANCELLED, State.DELIVERED})
OPEN = (State.PENDING_REVIEW, State.APPROVED)  # before dispensing: circulate, cancel

# kind -> the states it may start from (ISSUED starts from nothing)
FROM: dict[Kind, tuple[State, ...]] = {
    Kind.REVIEWED: (State.PENDING_REVIEW,),
    Kind.CIRCULATED: OPEN,
    Kind.DISPENSED: (State.APPROVED,),
    Kind.SHIPPED: (State.DISPENSED,),
    Kind.DELIVERED: (State.SHIPPED,),
    Kind.CANCELLED: OPEN,
}

# 处方开具当日有效，特殊情况下有效期不超过 3 天 (the prescription rules of 2007, art. 18).
DEFAULT_VALID = timedelta(days=1)
MAX_VALID_DAYS = 3
MAX_ITEMS = 5  # at most five drugs on one prescription


class TransitionRefused(MedfedError):
    """A transition the machine does not allow; the message names the states, never data."""


def check(kind: Kind, current: State) -> None:
    """Raise unless ``kind`` may start from ``current``."""
    allowed = FROM[kind]
    if current not in allowed:
        names = " or ".join(s.value for s in allowed)
        raise TransitionRefused(
            f"{kind.value} needs the prescription {names}; it is {current.value}"
        )


def target(kind: Kind, current: State, *, approved: bool = True) -> State:
    """The state after ``kind`` from ``current`` (checked)."""
    check(kind, current)
    if kind is Kind.REVIEWED:
        return State.APPROVED if approved else State.REJECTED
    if kind is Kind.CIRCULATED:
        return current
    return {
        Kind.DISPENSED: State.DISPENSED,
        Kind.SHIPPED: State.SHIPPED,
        Kind.DELIVERED: State.DELIVERED,
        Kind.CANCELLED: State.CANCELLED,
    }[kind]


def canonical_detail(facts: dict[str, Any]) -> str:
    """An event's ``detail``: canonical JSON (keys sorted, no spaces, UTF-8 as is, absent
    facts left out), so the same facts always give the same bytes to hash and sign."""
    return json.dumps(
        {k: x for k, x in facts.items() if x is not None},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


# -- canonical forms: what a signature covers and what the records log hashes --------------
PRESCRIPTION_TAG = b"medfed/e-prescription/v1\n"
EVENT_TAG = b"medfed/e-prescription-event/v1\n"


def _moment(value: Any) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def prescription_document(rx: dict[str, Any], items: list[dict[str, Any]]) -> bytes:
    """The bytes a doctor's signature covers: the tag line, then canonical JSON (keys sorted,
    no spaces, UTF-8) of what the doctor wrote. Times are China Standard Time wall-clock,
    ``YYYY-MM-DDTHH:MM:SS``; items in ``item_id`` order. A bureau's copy has no
    ``expires_at`` (null) and no workflow columns: those are not part of what was signed."""
    body = {
        "rxId": rx["rx_id"],
        "visitId": rx["mdtrt_id"],
        "personId": rx["person_ref"],
        "institution": rx["institution_code"],
        "doctor": rx["doctor_code"],
        "issuedAt": _moment(rx["issued_at"]),
        "expiresAt": _moment(rx.get("expires_at")),
        "items": [
            {
                "drugCode": i["drug_code"],
                "drugName": i["drug_name"],
                "quantity": i["quantity"],
                "unit": i["unit"],
                "dosage": i["dosage"],
                "days": i["days"],
            }
            for i in sorted(items, key=lambda i: i["item_id"])
        ],
    }
    return PRESCRIPTION_TAG + _json(body)


def event_document(event: dict[str, Any], prescription_signature: str) -> bytes:
    """The bytes a transition's signature covers: the tag line, then canonical JSON of the
    event row (``detail`` as the object it encodes) and the prescription's own signature, so
    a signed step is bound to the signed prescription it moved."""
    body = {
        "rxId": event["rx_id"],
        "seq": event["seq"],
        "kind": event["kind"],
        "from": event["from_status"],
        "to": event["to_status"],
        "actorRole": event["actor_role"],
        "actorOrg": event["actor_org"],
        "actorCode": event["actor_code"],
        "at": _moment(event["at"]),
        "detail": json.loads(event["detail"]),
        "prescriptionSignature": prescription_signature,
    }
    return EVENT_TAG + _json(body)


def signing_identity(event: dict[str, Any]) -> tuple[str, str] | None:
    """Whose key signs an event: the professional (doctor, pharmacist) who made it, else the
    acting organisation's seal; None for the patient's own step (their token is its proof)."""
    if event["actor_role"] == "patient":
        return None
    return event["actor_org"], event["actor_code"] or event["actor_org"]


def dispensing_id_of(rx_id: str) -> str:
    """A prescription is dispensed once, so its dispensing's id is its own (R… becomes D…),
    as the demo's are: the bureau's settlement and the trace name it by it."""
    return "D" + rx_id[1:]
