"""The national cross-province settlement platform (国家异地就医结算系统): filings (备案),
cross-province settlements and the monthly clearing between provinces (清算)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connectors.sql.models.base import blind_index, code, encrypted, person_ref, region


class Base(DeclarativeBase):
    pass


class Filing(Base):
    """备案: permission to be treated in another region with direct settlement."""

    __tablename__ = "filings"
    # A person's keyset page (newest first) read off the index: connectors/sql/top.py.
    __table_args__ = (Index("ix_filings_person_page", "person_ref", "filed_at", "filing_id"),)
    filing_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    person_ref: Mapped[str] = person_ref()
    id_number_bidx: Mapped[str] = blind_index()
    name_enc: Mapped[bytes] = encrypted()
    insuplc_admdvs: Mapped[str] = region()
    mdtrtarea_admvs: Mapped[str] = region()  # destination
    category: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(10))  # ACTIVE | REVOKED | EXPIRED
    filed_at: Mapped[datetime] = mapped_column(DateTime)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)


class CrossSettlement(Base):
    """A cross-province direct settlement, cleared monthly between the two provinces."""

    __tablename__ = "cross_settlements"
    # A person's keyset page (newest first) read off the index: connectors/sql/top.py.
    __table_args__ = (
        Index("ix_cross_settlements_person_page", "person_ref", "setl_time", "setl_id"),
    )
    setl_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    mdtrt_id: Mapped[str] = mapped_column(String(24), index=True)
    filing_id: Mapped[str] = mapped_column(String(24), index=True)
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
    clearing_status: Mapped[str] = mapped_column(String(10))  # PENDING | CLEARED
    clearing_month: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM


class Clearing(Base):
    """清算: what the insured province owes the treatment province for one month."""

    __tablename__ = "clearings"
    clearing_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    payer_province: Mapped[str] = region()  # insured place
    payee_province: Mapped[str] = region()  # treatment place
    settlement_count: Mapped[int] = mapped_column(Integer)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    fund_pay_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))  # OPEN | CLEARED
