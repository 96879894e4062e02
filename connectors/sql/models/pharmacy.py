"""A designated retail pharmacy (定点零售药店): dispensings of circulated prescriptions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connectors.sql.models.base import code, person_ref


class Base(DeclarativeBase):
    pass


class Dispensing(Base):
    """购药: one dispensing of a circulated prescription (or an over-the-counter purchase)."""

    __tablename__ = "dispensings"
    # A person's keyset page (newest first) read off the index: connectors/sql/top.py.
    __table_args__ = (
        Index("ix_dispensings_person_page", "person_ref", "dispensed_at", "dispensing_id"),
    )
    dispensing_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    rx_id: Mapped[str | None] = mapped_column(String(24), index=True, nullable=True)
    person_ref: Mapped[str] = person_ref()
    pharmacy_code: Mapped[str] = code()
    pharmacist_code: Mapped[str] = code(16)
    dispensed_at: Mapped[datetime] = mapped_column(DateTime)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    fund_pay_fen: Mapped[int] = mapped_column(BigInteger)
    acct_pay_fen: Mapped[int] = mapped_column(BigInteger)
    cash_pay_fen: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[bool] = mapped_column(Boolean)
    delivery_fee_fen: Mapped[int] = mapped_column(BigInteger)  # never covered by the fund
    # The patient's credential shown at the counter (mdtrt_cert_type 01/02/03): the real-name
    # check of a dispensing through dispensePrescription; None on older rows.
    cert_type: Mapped[str | None] = mapped_column(String(2), nullable=True)


class DispensingItem(Base):
    __tablename__ = "dispensing_items"
    item_id: Mapped[str] = mapped_column(String(28), primary_key=True)
    dispensing_id: Mapped[str] = mapped_column(ForeignKey("dispensings.dispensing_id"), index=True)
    drug_code: Mapped[str] = mapped_column(String(24))
    drug_name: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(8))
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class Delivery(Base):
    """配送: one delivery event of a dispensing sent to the patient's address: SHIPPED (the
    carrier took it, with its tracking number) or DELIVERED (the carrier handed it over).
    The fee is the patient's: ``paid_by`` is always PATIENT, never the fund."""

    __tablename__ = "rx_deliveries"
    delivery_id: Mapped[str] = mapped_column(String(28), primary_key=True)
    dispensing_id: Mapped[str] = mapped_column(ForeignKey("dispensings.dispensing_id"), index=True)
    rx_id: Mapped[str] = mapped_column(String(24), index=True)
    person_ref: Mapped[str] = person_ref()
    pharmacy_code: Mapped[str] = code()
    event: Mapped[str] = mapped_column(String(10))  # SHIPPED | DELIVERED
    carrier: Mapped[str] = mapped_column(String(32))
    tracking_no: Mapped[str] = mapped_column(String(40))
    fee_fen: Mapped[int] = mapped_column(BigInteger)
    paid_by: Mapped[str] = mapped_column(String(8))  # PATIENT
    at: Mapped[datetime] = mapped_column(DateTime)
