"""Fund-supervision warnings (风险预警) in the gateway's own database.

A warning is one rule hit on one claim: found before settlement (``PRE``, by recordSettlement)
or after it (``POST``, by the scan). Its id is derived from (rule, settlement or visit), so
the same hit found again — a re-run scan, the scheduled scan after the CLI's — lands on the
same row instead of a second one. It has a grade (1 notice … 4 blocking), an owner and a state:

    OPEN -> ACKNOWLEDGED -> RESOLVED | FALSE_POSITIVE      (OPEN may be closed directly)

Each change is a row of ``supervision_warning_notes`` (who, when, from which state to which,
and the note) and an audit event, so what supervisors did is in the Merkle log. A warning
names the person by their pseudonymous reference only, never a personal value; a warning on
a clearing between provinces (``CLEARING_MISMATCH``) names no person and no institution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from security.store import GatewayBase, insert_if_absent

STATES = ("OPEN", "ACKNOWLEDGED", "RESOLVED", "FALSE_POSITIVE")
CLOSED = ("RESOLVED", "FALSE_POSITIVE")
MOVES = {
    "OPEN": ("ACKNOWLEDGED", "RESOLVED", "FALSE_POSITIVE"),
    "ACKNOWLEDGED": ("RESOLVED", "FALSE_POSITIVE"),
    "RESOLVED": (),
    "FALSE_POSITIVE": (),
}


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
    state: Mapped[str] = mapped_column(String(16), index=True)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SupervisionWarningNote(GatewayBase):
    __tablename__ = "supervision_warning_notes"

    warning_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by: Mapped[str] = mapped_column(String(255))  # the supervisor's issuer/subject and org
    action: Mapped[str] = mapped_column(String(16))  # ASSIGN | ACKNOWLEDGE | RESOLVE | …
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    note: Mapped[str] = mapped_column(Text)


WARNINGS = SupervisionWarning.__table__
NOTES = SupervisionWarningNote.__table__


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


async def notes_of(engine: AsyncEngine, ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    ids = list(ids)
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    async with engine.connect() as conn:
        stmt = select(NOTES).where(NOTES.c.warning_id.in_(ids)).order_by(NOTES.c.seq)
        for row in await conn.execute(stmt):
            out[row.warning_id].append(dict(row._mapping))
    return out


class TransitionError(ValueError):
    """A change the lifecycle does not allow (from a closed state, to an unknown one)."""


async def change(
    engine: AsyncEngine,
    wid: str,
    *,
    by: str,
    action: str,
    to_state: str | None,
    owner: str | None,
    note: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One change of one warning, in one transaction with its note; the changed row.
    ``to_state`` None keeps the state (an assignment); ``owner`` None keeps the owner."""
    now = now or datetime.now(UTC)
    async with engine.begin() as conn:
        row = (await conn.execute(select(WARNINGS).where(WARNINGS.c.warning_id == wid))).first()
        if row is None:
            raise LookupError(wid)
        state = row.state
        target = to_state or state
        if to_state is not None and to_state not in MOVES[state]:
            raise TransitionError(f"a {state} warning cannot become {to_state}")
        if to_state is None and state in CLOSED:
            raise TransitionError(f"a {state} warning is closed")
        new_owner = owner if owner is not None else row.owner
        # The state guard makes a racing second change fail instead of overwriting the first.
        done = await conn.execute(
            update(WARNINGS)
            .where(WARNINGS.c.warning_id == wid, WARNINGS.c.state == state)
            .values(state=target, owner=new_owner, updated_at=now)
        )
        if done.rowcount != 1:
            raise TransitionError("the warning changed meanwhile; read it again")
        seq = (
            await conn.execute(
                select(func.coalesce(func.max(NOTES.c.seq), 0)).where(NOTES.c.warning_id == wid)
            )
        ).scalar_one()
        await conn.execute(
            NOTES.insert().values(
                warning_id=wid,
                seq=seq + 1,
                at=now,
                by=by,
                action=action,
                from_state=state,
                to_state=target,
                owner=new_owner,
                note=note,
            )
        )
        out = (await conn.execute(select(WARNINGS).where(WARNINGS.c.warning_id == wid))).first()
    return dict(out._mapping)
