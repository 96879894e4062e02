"""A hospital's result systems (LIS for lab, PACS for imaging) and its patient index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connectors.sql.models.base import blind_index, code, encrypted, person_ref
from connectors.sql.models.prescription_columns import PrescriptionColumns, PrescriptionItemColumns


class Base(DeclarativeBase):
    pass


class Patient(Base):
    """The hospital's master patient index, linked to the federation by blind index."""

    __tablename__ = "patients"
    patient_no: Mapped[str] = mapped_column(String(20), primary_key=True)
    person_ref: Mapped[str] = person_ref()
    id_number_bidx: Mapped[str] = blind_index()
    name_enc: Mapped[bytes] = encrypted()
    id_number_enc: Mapped[bytes] = encrypted()


class TestResult(Base):
    """检验 (LAB) or 检查 (IMAGING) result."""

    __test__ = False  # not a pytest class
    __tablename__ = "test_results"
    # A person's keyset page (newest first) read off the index: connectors/sql/top.py.
    __table_args__ = (
        Index("ix_test_results_person_page", "person_ref", "collected_at", "result_id"),
    )
    result_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    person_ref: Mapped[str] = person_ref()
    patient_no: Mapped[str] = mapped_column(String(20), index=True)
    institution_code: Mapped[str] = code()
    mdtrt_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    category: Mapped[str] = mapped_column(String(8))  # LAB | IMAGING
    item_code: Mapped[str] = mapped_column(String(16))  # LOINC for LAB, modality code else
    item_name: Mapped[str] = mapped_column(String(64))
    # LAB
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ref_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    ref_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    flag: Mapped[str | None] = mapped_column(String(2), nullable=True)  # N | H | L
    # IMAGING
    modality: Mapped[str | None] = mapped_column(String(4), nullable=True)  # CT MR DR US
    body_part: Mapped[str | None] = mapped_column(String(32), nullable=True)
    findings_enc: Mapped[bytes | None] = encrypted(nullable=True)
    impression_enc: Mapped[bytes | None] = encrypted(nullable=True)
    study_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # both
    ordering_doctor: Mapped[str] = code(16)
    collected_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    reported_at: Mapped[datetime] = mapped_column(DateTime)


class EPrescription(PrescriptionColumns, Base):
    """电子处方 as the prescribing hospital keeps it: the original the doctor signed (every
    column up to ``expires_at``, never changed after issue) and its place in the circulation
    workflow (``status`` and the review and circulation columns, changed only by the
    transitions of ``connectors.domain.prescriptions``, each with its event row).

    The columns the bureau's ``prescriptions`` table also has keep its names, so one read
    projection serves both."""

    __tablename__ = "e_prescriptions"
    # and the columns of PrescriptionColumns, shared with the bureau's copy
    mdtrt_id: Mapped[str] = mapped_column(String(24), index=True)  # the bureau's visit
    doctor_signature: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    # workflow state (connectors.domain.prescriptions.State), one transition at a time
    status: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer)  # events so far; the compare-and-set key


class EPrescriptionItem(PrescriptionItemColumns, Base):
    """One drug of an e-prescription (at most five), part of what the doctor signed."""

    __tablename__ = "e_prescription_items"
    rx_id: Mapped[str] = mapped_column(ForeignKey("e_prescriptions.rx_id"), index=True)


class PrescriptionEvent(Base):
    """One transition of an e-prescription, in order (``seq`` 1 is ISSUED): who (role,
    organisation, professional code), when, from which state to which, and what
    (``detail``: canonical JSON, see ``connectors.domain.prescriptions``). Append-only: a
    row is never changed once written, so it can be anchored as an original record."""

    __tablename__ = "e_prescription_events"
    __table_args__ = (UniqueConstraint("rx_id", "seq", name="uq_e_prescription_events_seq"),)
    event_id: Mapped[str] = mapped_column(String(28), primary_key=True)
    rx_id: Mapped[str] = mapped_column(ForeignKey("e_prescriptions.rx_id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_org: Mapped[str] = mapped_column(String(12))
    actor_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    detail: Mapped[str] = mapped_column(String(2000))
    signature: Mapped[str | None] = mapped_column(String(256), nullable=True)
