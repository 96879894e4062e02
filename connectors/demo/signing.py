"""The demo's signatures: each generated prescription is signed by its doctor's own key, and
each of its steps by the professional (or the pharmacy's seal) who made it, exactly as the
workflow mutations sign (``connectors.domain.prescriptions`` has the canonical forms,
``security.crypto.professional_keys`` the keys, created under ``<data>/keys/professionals/``
on first use).

Signing runs after the content hash is taken: the hash covers what the generator decided from
its seed, and stays the same across data directories with different keys.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from connectors.demo.generator import Record
from connectors.domain import prescriptions as machine
from security.crypto.professional_keys import ProfessionalKeys


def sign_records(
    records: list[Record], keys: ProfessionalKeys, pseudonym: Callable[[str], str]
) -> None:
    """Fill ``doctor_signature`` of every prescription (the bureau's copy over its own form)
    and ``signature`` of every signed event, in place. A record's ``person_ref`` still holds
    the ID number it will be stored as the pseudonym of: ``pseudonym`` gives that, so what is
    signed is what the source will hold."""
    items: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for _destination, table, values in records:
        if table in ("prescription_items", "e_prescription_items"):
            items[(table, str(values["rx_id"]))].append(values)
    signed: dict[str, str] = {}
    for _destination, table, values in records:
        if table in ("prescriptions", "e_prescriptions"):
            rx_id = str(values["rx_id"])
            lines = items[(_items_table(table), rx_id)]
            values["doctor_signature"] = keys.sign(
                str(values["institution_code"]),
                str(values["doctor_code"]),
                machine.prescription_document(
                    {**values, "person_ref": pseudonym(str(values["person_ref"]))}, lines
                ),
            )
            if table == "e_prescriptions":
                signed[rx_id] = values["doctor_signature"]  # type: ignore[assignment]
        elif table == "e_prescription_events":
            who = machine.signing_identity(values)
            if who is not None:
                document = machine.event_document(values, signed[str(values["rx_id"])])
                values["signature"] = keys.sign(*who, document)


def _items_table(table: str) -> str:
    return "e_prescription_items" if table == "e_prescriptions" else "prescription_items"
