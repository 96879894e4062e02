"""A hospital's result systems (LIS for lab, PACS for imaging) and its patient index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connectors.sql.models.base import blind_index, code, encrypted, person_ref


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
