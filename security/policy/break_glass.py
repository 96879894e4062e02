"""Break-glass (紧急访问): a clinician with purpose EMERGENCY reads a person they have no
treating relation with and no consent from. Every such access needs a reason (a code of
:data:`REASONS` and free text, sent as ``X-Break-Glass-Reason`` and ``X-Break-Glass-Text``),
is granted here, counted per clinician (issuer and sub) *and* per institution per day in the
gateway's database, lasts a limited time, and opens an alert (the request's audit event).

Both limits hold across gateway workers without locks: each grant takes a numbered slot of
the clinician and one of the institution, and (clinician, day, slot) and (org, day,
org_slot) are unique, so two workers can never hand out the same last slot. The institution
limit is what stops an issuer that mints fresh subs: they all count against their org.

The free text is personal (it may name the patient's state): it is stored only as a field
ciphertext (source ``gateway``), in the grant and in the audit event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from sqlalchemy import (
    DateTime,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from security.errors import MedfedError
from security.store import GatewayBase

GATEWAY_KEY_SOURCE = "gateway"  # the keyring source of the gateway's own ciphertexts
# Where a reason's ciphertext is bound (its associated data): the row key is the request id.
REASON_CELL = ("break_glass", "reason")
# Where a security officer's note on an alert is bound: the row key is the alert's id.
NOTE_CELL = ("audit_alerts", "note")
REASON_HEADER = "x-break-glass-reason"
TEXT_HEADER = "x-break-glass-text"
MAX_TEXT = 500  # characters of free text
# The reasons a clinician may give, with what each means (docs/policy.md lists them).
REASONS: dict[str, str] = {
    "LIFE_THREATENING": "the patient's life or limb is at risk",
    "UNCONSCIOUS": "the patient cannot consent (unconscious, incapable)",
    "URGENT_CARE": "treatment cannot wait for a referral or a consent",
    "RECORDS_UNAVAILABLE": "the treating relation exists but its record cannot be reached",
}
CLINICIAN_LIMIT = "BREAK_GLASS_CLINICIAN_LIMIT"
INSTITUTION_LIMIT = "BREAK_GLASS_INSTITUTION_LIMIT"
UNAVAILABLE = "BREAK_GLASS_UNAVAILABLE"
REASON_REQUIRED = "BREAK_GLASS_REASON_REQUIRED"


class BreakGlassGrant(GatewayBase):
    __tablename__ = "break_glass_grants"
    __table_args__ = (
        UniqueConstraint("clinician", "day", "slot", name="uq_break_glass_slot"),
        Index("uq_break_glass_org_slot", "org", "day", "org_slot", unique=True),
    )

    clinician: Mapped[str] = mapped_column(String(255), primary_key=True)  # issuer|sub
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, local
    person_ref: Mapped[str] = mapped_column(String(32), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger)
    org: Mapped[str] = mapped_column(String(12))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The institution's slot that day (gateway_0015; None for grants made before it).
    org_slot: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    reason_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason_text: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


TABLE = BreakGlassGrant.__table__


class ReasonError(MedfedError, ValueError):
    """The request's break-glass reason is missing or not one of :data:`REASONS`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: str  # plain only in memory, for the request that gave it

    def __repr__(self) -> str:  # never the text, in a traceback or a log line
        return f"Reason({self.code!r})"


def parse_reason(codes: list[str], texts: list[str]) -> Reason:
    """The reason of an EMERGENCY request from its two headers (the text percent-encoded
    UTF-8), or :class:`ReasonError` naming what is wrong (never repeating the text)."""
    known = ", ".join(REASONS)
    if len(codes) != 1 or len(texts) != 1 or not codes[0].strip() or not texts[0].strip():
        raise ReasonError(
            REASON_REQUIRED,
            "purpose EMERGENCY needs a reason: X-Break-Glass-Reason (one of "
            f"{known}) and X-Break-Glass-Text (free text, percent-encoded UTF-8)",
        )
    code = codes[0].strip()
    if code not in REASONS:
        raise ReasonError(
            "BREAK_GLASS_REASON_UNKNOWN", f"X-Break-Glass-Reason must be one of {known}"
        )
    try:
        if not texts[0].isascii():  # raw bytes in a header arrive as Latin-1: refuse, not guess
            raise UnicodeDecodeError("ascii", b"", 0, 1, "not percent-encoded")
        text = unquote(texts[0].strip(), errors="strict")
    except UnicodeDecodeError:
        raise ReasonError(
            REASON_REQUIRED, "X-Break-Glass-Text is not percent-encoded UTF-8"
        ) from None
    if not text.strip() or len(text) > MAX_TEXT:
        raise ReasonError(
            REASON_REQUIRED,
            f"X-Break-Glass-Text must hold 1-{MAX_TEXT} characters",
        )
    return Reason(code, text.strip())


@dataclass(frozen=True)
class BreakGlassOutcome:
    granted: frozenset[str]
    refused: frozenset[str]
    used_today: int
    limit: int
    opened: frozenset[str] = frozenset()  # granted now or renewed: each opens an alert
    refused_because: str | None = None  # CLINICIAN_LIMIT, INSTITUTION_LIMIT or UNAVAILABLE


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class BreakGlassLedger:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        persons_per_day: int,
        hours: float,
        institution_per_day: int = 20,
    ) -> None:
        self._engine = engine
        self.persons_per_day = persons_per_day
        self.institution_per_day = institution_per_day
        self.duration = timedelta(hours=hours)

    async def grant(
        self,
        clinician: str,
        org: str,
        person_refs: Iterable[str],
        now: datetime,
        reason_code: str | None = None,
        reason_text: bytes | None = None,
    ) -> BreakGlassOutcome:
        """Grant break-glass for each person unless the clinician's or the institution's
        daily limit is spent (``reason_text`` is the reason's ciphertext).

        A person already granted today costs no new slot; once their grant has run out it is
        renewed (and opened again) in the same slot.
        """
        refs = list(dict.fromkeys(person_refs))
        for _attempt in range(5):
            try:
                return await self._grant_once(clinician, org, refs, now, reason_code, reason_text)
            except IntegrityError:
                continue  # another worker took the slot we chose: count again
        return BreakGlassOutcome(
            frozenset(),
            frozenset(refs),
            self.persons_per_day,
            self.persons_per_day,
            refused_because=UNAVAILABLE,
        )

    async def _grant_once(
        self,
        clinician: str,
        org: str,
        refs: list[str],
        now: datetime,
        reason_code: str | None,
        reason_text: bytes | None,
    ) -> BreakGlassOutcome:
        day = now.astimezone().strftime("%Y-%m-%d")
        moment = now.astimezone(UTC)
        granted: set[str] = set()
        opened: set[str] = set()
        refused: set[str] = set()
        because: str | None = None
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(TABLE).where(TABLE.c.clinician == clinician, TABLE.c.day == day)
                )
            ).all()
            held = {r.person_ref: r for r in rows}
            next_slot = max((r.slot for r in rows), default=0) + 1
            org_used = (
                await conn.execute(
                    select(func.coalesce(func.max(TABLE.c.org_slot), 0)).where(
                        TABLE.c.org == org, TABLE.c.day == day
                    )
                )
            ).scalar_one()
            next_org_slot = int(org_used) + 1
            for ref in refs:
                row = held.get(ref)
                if row is not None:
                    if _aware(row.expires_at) <= moment:
                        await conn.execute(
                            update(TABLE)
                            .where(
                                TABLE.c.clinician == clinician,
                                TABLE.c.day == day,
                                TABLE.c.person_ref == ref,
                            )
                            .values(
                                granted_at=moment,
                                expires_at=moment + self.duration,
                                reason_code=reason_code,
                                reason_text=reason_text,
                            )
                        )
                        opened.add(ref)
                    granted.add(ref)
                elif next_slot > self.persons_per_day:
                    refused.add(ref)
                    because = because or CLINICIAN_LIMIT
                elif next_org_slot > self.institution_per_day:
                    refused.add(ref)
                    because = because or INSTITUTION_LIMIT
                else:
                    await conn.execute(
                        insert(TABLE).values(
                            clinician=clinician,
                            day=day,
                            person_ref=ref,
                            slot=next_slot,
                            org=org,
                            org_slot=next_org_slot,
                            granted_at=moment,
                            expires_at=moment + self.duration,
                            reason_code=reason_code,
                            reason_text=reason_text,
                        )
                    )
                    next_slot += 1
                    next_org_slot += 1
                    granted.add(ref)
                    opened.add(ref)
        return BreakGlassOutcome(
            frozenset(granted),
            frozenset(refused),
            next_slot - 1,
            self.persons_per_day,
            frozenset(opened),
            because,
        )
