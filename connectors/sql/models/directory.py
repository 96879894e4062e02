"""The institution directory: designated hospitals, internet hospitals and pharmacies."""

from __future__ import annotations

from sqlalchemy import Boolean, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connectors.sql.models.base import region


class Base(DeclarativeBase):
    pass


class Institution(Base):
    __tablename__ = "institutions"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(12))  # TERTIARY | SECONDARY | PRIMARY | NONE
    kind: Mapped[str] = mapped_column(String(12))  # HOSPITAL | PHARMACY
    region: Mapped[str] = region()
    internet_hospital: Mapped[bool] = mapped_column(Boolean)
    # The institution's public address and switchboard (公开的机构地址与电话), not a person's.
    address: Mapped[str | None] = mapped_column(String(128), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)


class CodeLabel(Base):
    """The name of a national code (行政区划, ICD-10 诊断, 医保药品): public reference data, so
    a page shows 杭州市 for 330100 without a code list of its own."""

    __tablename__ = "code_labels"
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)  # REGION | DIAGNOSIS | DRUG
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
