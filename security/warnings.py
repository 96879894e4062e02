"""Fund-supervision warnings (风险预警) in the gateway's own database.

A warning is one rule hit on one claim: found before settlement (``PRE``, by recordSettlement)
or after it (``POST``, by the scan). Its id is derived from (rule, settlement or visit), so
the same hit found again — a re-run scan, the scheduled scan after the CLI's — lands on the
same row instead of a second one. A warning is opened by an audit event that carries its facts
(:func:`record`); the log's derive hook stores it, so ``medfed audit verify`` proves the rule,
grade, claim and detail an auditor reads as it proves the state. It has a grade (1 notice …
4 blocking), an owner and a state:

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
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, String, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from security.store import GatewayBase

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
    # The event that opened it (its facts are that event's); None only for a warning opened
    # beside the log before gateway_0018, which verify reports.
    opened_idx: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
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


MAX_PER_EVENT = 200  # warnings opened by one event (an event stays a few tens of kB)
FIXED = (
    "rule",
    "grade",
    "phase",
    "setl_id",
    "mdtrt_id",
    "clearing_id",
    "source",
    "person_ref",
    "institution_code",
    "doctor_code",
    "insured_region",
    "treatment_region",
    "detail",
)


def facts_of(w: NewWarning) -> dict[str, Any]:
    """A new warning as its opening event carries it (JSON)."""
    out: dict[str, Any] = {"id": w.key, **{c: getattr(w, c) for c in FIXED}}
    out["settled_at"] = w.settled_at.isoformat() if w.settled_at else None
    return out


def opened_row(idx: int, at: datetime, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The row event ``idx`` (logged at ``at``) opens from one warning's ``facts``."""
    settled = facts.get("settled_at")
    return {
        "warning_id": str(facts["id"]),
        **{c: facts.get(c) for c in FIXED},
        "settled_at": datetime.fromisoformat(settled) if isinstance(settled, str) else None,
        "found_at": at,
        "updated_at": at,
        "opened_idx": idx,
        "state": "OPEN",
        "owner": None,
        "state_idx": None,
        "changed_by": None,
        "changed_org": None,
        "changed_at": None,
        "note": None,
    }


async def unknown(engine: AsyncEngine, found: Iterable[NewWarning]) -> list[NewWarning]:
    """The hits of ``found`` not stored yet, each once (the first of a key)."""
    fresh: dict[str, NewWarning] = {}
    for w in found:
        fresh.setdefault(w.key, w)
    if not fresh:
        return []
    ids = list(fresh)
    known: set[str] = set()
    async with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            stmt = select(WARNINGS.c.warning_id).where(WARNINGS.c.warning_id.in_(ids[i : i + 500]))
            known.update((await conn.execute(stmt)).scalars())
    return [w for w in fresh.values() if w.key not in known]


async def record(
    engine: AsyncEngine,
    recorder: Any,
    found: Iterable[NewWarning],
    *,
    principal: Any = None,
    purpose: str = "FUND_SUPERVISION",
    request_id: str | None = None,
) -> list[str]:
    """Open the new hits of ``found`` through the audit log (``recorder``), a hit already
    stored left as it is; the ids this call opened. No log, no warning: one nobody could
    prove is not stored (None ``recorder`` opens nothing)."""
    from security.audit.alert_state import warnings_opened_event

    if recorder is None:
        return []
    new = await unknown(engine, found)
    for i in range(0, len(new), MAX_PER_EVENT):
        chunk = new[i : i + MAX_PER_EVENT]
        await recorder.record(
            warnings_opened_event(
                [facts_of(w) for w in chunk],
                principal=principal,
                purpose=purpose,
                request_id=request_id or secrets.token_hex(16),
            )
        )
    return [w.key for w in new]


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
