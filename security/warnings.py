"""Fund-supervision warnings (风险预警) in the gateway's own database.

A warning is one rule hit on one claim: found before settlement (``PRE``, by recordSettlement)
or after it (``POST``, by the scan). Its id is derived from (rule, settlement or visit), so
the same hit found again — a re-run scan, the scheduled scan after the CLI's — lands on the
same row instead of a second one. It has a grade (1 notice … 4 blocking), an owner and a state:

    OPEN -> ACKNOWLEDGED -> RESOLVED | FALSE_POSITIVE      (OPEN may be closed directly)

the state model it shares with the access alerts (:mod:`security.audit.alert_state`). Its
state, owner and last note change only through ``ALERT`` change events in the audit log,
whose derive hook sets them here and adds a row to ``supervision_warning_changes`` (who,
when, from which state to which, the owner, the note as a field ciphertext), so ``medfed
audit verify`` recomputes the history and holds each state to the event that set it. A warning
names the person by their pseudonymous reference only, never a personal value; a warning on
a clearing between provinces (``CLEARING_MISMATCH``) names no person and no institution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, String, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from security.store import GatewayBase, insert_if_absent

CLOSED = ("RESOLVED", "FALSE_POSITIVE")
NOTE_CELL = ("supervision_warning_changes", "note")  # a note's ciphertext: its table, column


class SupervisionWarning(GatewayBase):
    __tablename__ = "supervision_warnings"

    warning_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule: Mapped[str] = mapped_column(String(48), index=True)
    grade: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(4))  # PRE | POST
    setl_id: Mapped[str | None] = mapped_column(String(24), nullable=True, index=True)
    mdtrt_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    source: Mapped[str] = mapped_column(String(64))
    clearing_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    person_ref: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    institution_code: Mapped[str | None] = mapped_column(String(12), nullable=True, index=True)
    doctor_code: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    insured_region: Mapped[str] = mapped_column(String(6), index=True)
    treatment_region: Mapped[str] = mapped_column(String(6), index=True)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    found_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set only by the log's change events (security.audit.alert_state.STATE_COLUMNS);
    # state_idx is the event that set them, None while the warning was never changed.
    state: Mapped[str] = mapped_column(String(16), index=True)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    state_idx: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    changed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    changed_org: Mapped[str | None] = mapped_column(String(64), nullable=True)
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # field ciphertext


class SupervisionWarningChange(GatewayBase):
    """One change of one warning, derived from its ``ALERT`` change event (``idx``)."""

    __tablename__ = "supervision_warning_changes"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    warning_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by: Mapped[str] = mapped_column(String(255))  # the supervisor: issuer|subject|organisation
    action: Mapped[str] = mapped_column(String(16))  # ASSIGN | ACKNOWLEDGE | RESOLVE | …
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    note: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # field ciphertext


WARNINGS = SupervisionWarning.__table__
CHANGES = SupervisionWarningChange.__table__


def warning_id(rule: str, claim_key: str) -> str:
    """The same rule on the same claim is one warning, before and after settlement."""
    return hashlib.sha256(f"{rule}|{claim_key}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class NewWarning:
    rule: str
    grade: int
    phase: str
    setl_id: str | None
    mdtrt_id: str | None
    source: str
    person_ref: str | None
    institution_code: str | None
    doctor_code: str | None
    insured_region: str
    treatment_region: str
    settled_at: datetime | None
    detail: str
    clearing_id: str | None = None

    @property
    def key(self) -> str:
        if self.setl_id:
            return warning_id(self.rule, self.setl_id)
        if self.clearing_id:
            return warning_id(self.rule, f"clearing:{self.clearing_id}")
        return warning_id(self.rule, f"visit:{self.mdtrt_id}")


async def record(
    engine: AsyncEngine, found: Iterable[NewWarning], now: datetime | None = None
) -> list[str]:
    """Store new warnings (a hit already stored is left as it is); the ids newly stored."""
    now = now or datetime.now(UTC)
    stored: list[str] = []
    async with engine.begin() as conn:
        for w in found:
            row: dict[str, Any] = {
                "warning_id": w.key,
                "rule": w.rule,
                "grade": w.grade,
                "phase": w.phase,
                "setl_id": w.setl_id,
                "mdtrt_id": w.mdtrt_id,
                "clearing_id": w.clearing_id,
                "source": w.source,
                "person_ref": w.person_ref,
                "institution_code": w.institution_code,
                "doctor_code": w.doctor_code,
                "insured_region": w.insured_region,
                "treatment_region": w.treatment_region,
                "settled_at": w.settled_at,
                "detail": w.detail,
                "found_at": now,
                "state": "OPEN",
                "owner": None,
                "updated_at": now,
            }
            if await insert_if_absent(conn, WARNINGS, row):
                stored.append(w.key)
    return stored


async def get(engine: AsyncEngine, wid: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(WARNINGS).where(WARNINGS.c.warning_id == wid))).first()
    return None if row is None else dict(row._mapping)


async def changes_of(engine: AsyncEngine, ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Each warning's changes, oldest first (the note still sealed)."""
    ids = list(ids)
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    async with engine.connect() as conn:
        stmt = select(CHANGES).where(CHANGES.c.warning_id.in_(ids)).order_by(CHANGES.c.idx)
        for row in await conn.execute(stmt):
            out[row.warning_id].append(dict(row._mapping))
    return out
