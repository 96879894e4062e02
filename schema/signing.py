"""The professionals' signing keys as the schema uses them (``Services.extras``): signing a
prescription or a transition for the caller's organisation, and checking a signature."""

from __future__ import annotations

from typing import Any

from connectors.domain import prescriptions as machine
from security.crypto.professional_keys import ProfessionalKeys

PROFESSIONAL_KEYS = "professional_keys"  # Services.extras: the ProfessionalKeys store


def keys(ctx: Any) -> ProfessionalKeys:
    found = ctx.services.extras.get(PROFESSIONAL_KEYS)
    if found is None:  # fail closed: nothing is written unsigned
        raise RuntimeError("e-prescriptions need the professional keys (Services.extras)")
    return found


def sign_prescription(ctx: Any, rx: dict, items: list[dict]) -> str:
    return keys(ctx).sign(
        rx["institution_code"], rx["doctor_code"], machine.prescription_document(rx, items)
    )


def sign_event(ctx: Any, event: dict, prescription_signature: str) -> str | None:
    """The event's signature by its actor's key (None for the patient's own step)."""
    who = machine.signing_identity(event)
    if who is None:
        return None
    return keys(ctx).sign(*who, machine.event_document(event, prescription_signature))
