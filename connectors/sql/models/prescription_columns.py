"""The columns an e-prescription has wherever it is kept: the prescribing hospital's original
(``hospital.EPrescription``) and the bureau's insurance copy (``bureau.Prescription``), with
their items. Declared once here, so the two cannot drift apart; each table adds what only it
has (the hospital's workflow state and expiry, the bureau's link to its visit)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from connectors.sql.models.base import code, person_ref


class PrescriptionColumns:
    rx_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    person_ref: Mapped[str] = person_ref()
    institution_code: Mapped[str] = code()
    doctor_code: Mapped[str] = code(16)
    issued_at: Mapped[datetime] = mapped_column(DateTime)
    review_status: Mapped[str] = mapped_column(String(10))  # PENDING | APPROVED | REJECTED
    reviewed_by: Mapped[str | None] = code(16, nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    circulated_to: Mapped[str | None] = code(nullable=True, index=True)


class PrescriptionItemColumns:
    """One drug (at most five per prescription), part of what the doctor signed."""

    item_id: Mapped[str] = mapped_column(String(28), primary_key=True)
    drug_code: Mapped[str] = mapped_column(String(24))
    drug_name: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(8))
    dosage: Mapped[str] = mapped_column(String(64))
    days: Mapped[int] = mapped_column(Integer)
