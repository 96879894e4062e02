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
