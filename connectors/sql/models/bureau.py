"""A provincial medical-insurance bureau (省医疗保障局): its insured persons, their
enrollments, and the visits, prescriptions and settlements at institutions in the province."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connectors.sql.models.base import blind_index, code, encrypted, person_ref, region
from connectors.sql.models.prescription_columns import PrescriptionColumns, PrescriptionItemColumns


class Base(DeclarativeBase):
    pass


class Person(Base):
    """参保人: one row per person ever insured in this province."""

    __tablename__ = "persons"
    psn_no: Mapped[str] = mapped_column(String(20), primary_key=True)
    person_ref: Mapped[str] = person_ref()
    id_number_bidx: Mapped[str] = blind_index()
    phone_bidx: Mapped[str | None] = blind_index(nullable=True)
    name_enc: Mapped[bytes] = encrypted()
    id_number_enc: Mapped[bytes] = encrypted()
    phone_enc: Mapped[bytes | None] = encrypted(nullable=True)
    birth_date_enc: Mapped[bytes] = encrypted()
    address_enc: Mapped[bytes | None] = encrypted(nullable=True)
    gender: Mapped[str] = mapped_column(String(6))  # MALE | FEMALE
    insuplc_admdvs: Mapped[str] = region()  # insured place (pooling region)


class Enrollment(Base):
    """参保: a period of insurance in one pooling region."""

    __tablename__ = "enrollments"
    enrollment_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("persons.psn_no"), index=True)
    person_ref: Mapped[str] = person_ref()
    insutype: Mapped[str] = mapped_column(String(10))  # EMPLOYEE | RESIDENT
    pool_admdvs: Mapped[str] = region()
    begin_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(10))  # ACTIVE | SUSPENDED | ENDED
    account_balance_fen: Mapped[int] = mapped_column(BigInteger)


class Visit(Base):
    """就诊 (mdtrt): one outpatient, inpatient, internet revisit, chronic or pharmacy visit at
    an institution in this province, whoever insures the person."""

    __tablename__ = "visits"
    # A person's keyset pages (bureau_0002); the claims rule on doctors' volume counts one
    # doctor's visits of one day (bureau_0003).
    __table_args__ = (
        Index("ix_visits_person_page", "person_ref", "begin_date", "mdtrt_id"),
        Index("ix_visits_doctor_day", "doctor_code", "begin_date"),
    )
    mdtrt_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    person_ref: Mapped[str] = person_ref()
    institution_code: Mapped[str] = code(index=True)
    visit_type: Mapped[str] = mapped_column(String(20))
    begin_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    diagnosis_codes: Mapped[str] = mapped_column(String(80))  # ICD-10, comma separated
    diagnosis_text_enc: Mapped[bytes | None] = encrypted(nullable=True)
    doctor_code: Mapped[str] = code(16)
    insuplc_admdvs: Mapped[str] = region()
    mdtrtarea_admvs: Mapped[str] = region()
    cross_region: Mapped[bool] = mapped_column(Boolean)


class Prescription(PrescriptionColumns, Base):
    """电子处方: signed by the doctor, reviewed by a pharmacist before it takes effect,
    optionally circulated (流转) to a designated pharmacy."""

    __tablename__ = "prescriptions"
    # A person's keyset page (newest first) read off the index: connectors/sql/top.py.
    __table_args__ = (Index("ix_prescriptions_person_page", "person_ref", "issued_at", "rx_id"),)
    # and the columns of PrescriptionColumns, shared with the hospital's original
    mdtrt_id: Mapped[str] = mapped_column(ForeignKey("visits.mdtrt_id"), index=True)
    doctor_signature: Mapped[str] = mapped_column(String(128))


class PrescriptionItem(PrescriptionItemColumns, Base):
    __tablename__ = "prescription_items"
    rx_id: Mapped[str] = mapped_column(ForeignKey("prescriptions.rx_id"), index=True)


class Settlement(Base):
    """结算 (setl) of a visit in this province. Cross-province ones are recorded by the
    national platform instead."""

    __tablename__ = "settlements"
    # A person's keyset page (newest first) read off the index: connectors/sql/top.py.
    __table_args__ = (Index("ix_settlements_person_page", "person_ref", "setl_time", "setl_id"),)
    setl_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    mdtrt_id: Mapped[str] = mapped_column(ForeignKey("visits.mdtrt_id"), index=True)
    person_ref: Mapped[str] = person_ref()
    institution_code: Mapped[str] = code()
    med_type: Mapped[str] = mapped_column(String(20))
    setl_time: Mapped[datetime] = mapped_column(DateTime, index=True)
    insuplc_admdvs: Mapped[str] = region()
    mdtrtarea_admvs: Mapped[str] = region()
    total_fen: Mapped[int] = mapped_column(BigInteger)
    in_policy_fen: Mapped[int] = mapped_column(BigInteger)
    fund_pay_fen: Mapped[int] = mapped_column(BigInteger)
    acct_pay_fen: Mapped[int] = mapped_column(BigInteger)
    cash_pay_fen: Mapped[int] = mapped_column(BigInteger)
    cross_province: Mapped[bool] = mapped_column(Boolean)
    clearing_status: Mapped[str] = mapped_column(String(10))  # PENDING | CLEARED
    # The pharmacy dispensing a PHARMACY settlement pays for (the trace links them by it);
    # None for every other settlement.
    dispensing_id: Mapped[str | None] = mapped_column(String(24), index=True, default=None)
