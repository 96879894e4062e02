"""Break-glass (紧急访问): a clinician with purpose EMERGENCY reads a person they have no
treating relation with and no consent from. Every such access is granted here, counted per
clinician per day in the gateway's database, and lasts a limited time.

The daily limit holds across gateway workers without locks: each grant takes a numbered slot,
and (clinician, day, slot) is unique, so two workers can never hand out the same last slot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, SmallInteger, String, UniqueConstraint, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from security.store import GatewayBase


class BreakGlassGrant(GatewayBase):
    __tablename__ = "break_glass_grants"
    __table_args__ = (UniqueConstraint("clinician", "day", "slot", name="uq_break_glass_slot"),)

    clinician: Mapped[str] = mapped_column(String(255), primary_key=True)  # issuer|sub
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, local
    person_ref: Mapped[str] = mapped_column(String(32), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger)
    org: Mapped[str] = mapped_column(String(12))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


TABLE = BreakGlassGrant.__table__


@dataclass(frozen=True)
class BreakGlassOutcome:
    granted: frozenset[str]
    refused: frozenset[str]
    used_today: int
    limit: int


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class BreakGlassLedger:
    def __init__(self, engine: AsyncEngine, *, persons_per_day: int, hours: float) -> None:
        self._engine = engine
        self.persons_per_day = persons_per_day
        self.duration = timedelta(hours=hours)

    async def grant(
        self, clinician: str, org: str, person_refs: Iterable[str], now: datetime
    ) -> BreakGlassOutcome:
        """Grant break-glass for each person unless the clinician's daily limit is spent.

        A person already granted today costs no new slot; once their grant has run out it is
        renewed (and flagged again) in the same slot.
        """
        refs = list(dict.fromkeys(person_refs))
        for _attempt in range(5):
            try:
                return await self._grant_once(clinician, org, refs, now)
            except IntegrityError:
                continue  # another worker took the slot we chose: count again
        return BreakGlassOutcome(
            frozenset(), frozenset(refs), self.persons_per_day, self.persons_per_day
        )

    async def _grant_once(
        self, clinician: str, org: str, refs: list[str], now: datetime
    ) -> BreakGlassOutcome:
        day = now.astimezone().strftime("%Y-%m-%d")
        moment = now.astimezone(UTC)
        granted: set[str] = set()
        refused: set[str] = set()
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(TABLE).where(TABLE.c.clinician == clinician, TABLE.c.day == day)
                )
            ).all()
            held = {r.person_ref: r for r in rows}
            next_slot = max((r.slot for r in rows), default=0) + 1
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
                            .values(granted_at=moment, expires_at=moment + self.duration)
                        )
                    granted.add(ref)
                elif next_slot <= self.persons_per_day:
                    await conn.execute(
                        insert(TABLE).values(
                            clinician=clinician,
                            day=day,
                            person_ref=ref,
                            slot=next_slot,
                            org=org,
                            granted_at=moment,
                            expires_at=moment + self.duration,
                        )
                    )
                    next_slot += 1
                    granted.add(ref)
                else:
                    refused.add(ref)
        return BreakGlassOutcome(
            frozenset(granted), frozenset(refused), next_slot - 1, self.persons_per_day
        )
