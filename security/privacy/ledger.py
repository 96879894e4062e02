"""The privacy budget: a per-partner ledger of epsilon in the gateway's own database.

OpenDP keeps what a session spent in memory; medfed keeps it here, so it holds across
requests, workers and restarts. Two tables:

``privacy_budgets``  one row per (partner, period): what was spent, in millionths of epsilon
                     (integers, so the arithmetic is exact);
``privacy_spends``   one row per (partner, period, question): what it cost and the noisy
                     answer that was released, so the same question in the same period is
                     answered again from here, never re-noised (fresh noise would average out).

A spend is one transaction: ``UPDATE ... SET spent = spent + e WHERE spent + e <= budget``
(row-locked on PostgreSQL, under the database write lock on SQLite, so concurrent spends
serialise and the budget is never exceeded) and the insert of the answer; it commits before
the answer is released. A second, racing spend of the same question finds the first's answer
and is not charged. A new period is a new row: budgets renew by themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import orjson
from sqlalchemy import BigInteger, DateTime, String, Text, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from security.errors import MedfedError
from security.store import GatewayBase, insert_if_absent


class PrivacyBudget(GatewayBase):
    __tablename__ = "privacy_budgets"

    partner: Mapped[str] = mapped_column(String(80), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    spent_micro: Mapped[int] = mapped_column(BigInteger)


class PrivacySpend(GatewayBase):
    __tablename__ = "privacy_spends"

    partner: Mapped[str] = mapped_column(String(80), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    question: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex
    statistic: Mapped[str] = mapped_column(String(40))
    epsilon_micro: Mapped[int] = mapped_column(BigInteger)
    answer: Mapped[str] = mapped_column(Text)  # the released noisy answer, JSON
    request_id: Mapped[str] = mapped_column(String(64))
    spent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


BUDGETS = PrivacyBudget.__table__
SPENDS = PrivacySpend.__table__


class BudgetExhausted(MedfedError):
    def __init__(self, spent_micro: int, budget_micro: int) -> None:
        super().__init__("privacy budget exhausted")
        self.spent_micro = spent_micro
        self.budget_micro = budget_micro


class _Taken(Exception):
    """The question was answered (and charged) by a racing request: roll back, reuse."""


@dataclass(frozen=True)
class Spent:
    answer: dict
    charged_micro: int  # 0 when the stored answer was reused
    spent_micro: int  # in the period, after this spend
    reused: bool


def period_of(now: datetime, period: str) -> str:
    """The budget period containing ``now`` (UTC): 2020-11-01, 2020-W44, 2020-11, 2020-Q4, 2020."""
    day = now.astimezone(UTC).date() if now.tzinfo else now.date()
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{day:%Y-%m}"
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    if period == "year":
        return str(day.year)
    raise ValueError(f"unknown period {period!r}")


def period_end(now: datetime, period: str) -> datetime:
    """When the period containing ``now`` ends, and the budget renews (UTC)."""
    day = now.astimezone(UTC).date() if now.tzinfo else now.date()
    if period == "day":
        end = day + timedelta(days=1)
    elif period == "week":
        end = day + timedelta(days=7 - day.weekday())
    elif period == "month":
        end = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    elif period == "quarter":
        first = (day.month - 1) // 3 * 3 + 1
        end = date(day.year + (first + 3 > 12), (first + 2) % 12 + 1, 1)
    elif period == "year":
        end = date(day.year + 1, 1, 1)
    else:
        raise ValueError(f"unknown period {period!r}")
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


class PrivacyLedger:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def spent(self, partner: str, period: str) -> int:
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(BUDGETS.c.spent_micro).where(
                    BUDGETS.c.partner == partner, BUDGETS.c.period == period
                )
            )
        return int(value or 0)

    async def spenders(self, periods: set[str]) -> list[tuple[str, str, int]]:
        """Every (partner, period, spent) of these periods: who has spent, for the auditors."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(BUDGETS.c.partner, BUDGETS.c.period, BUDGETS.c.spent_micro)
                .where(BUDGETS.c.period.in_(sorted(periods)))
                .order_by(BUDGETS.c.spent_micro.desc(), BUDGETS.c.partner)
            )
            return [(r.partner, r.period, int(r.spent_micro)) for r in rows]

    async def questions(self, partner: str, period: str) -> int:
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(func.count()).where(SPENDS.c.partner == partner, SPENDS.c.period == period)
            )
        return int(value or 0)

    async def stored(self, partner: str, period: str, question: str) -> dict | None:
        async with self._engine.connect() as conn:
            text = await conn.scalar(
                select(SPENDS.c.answer).where(
                    SPENDS.c.partner == partner,
                    SPENDS.c.period == period,
                    SPENDS.c.question == question,
                )
            )
        return None if text is None else orjson.loads(text)

    async def spend(
        self,
        *,
        partner: str,
        period: str,
        question: str,
        statistic: str,
        epsilon_micro: int,
        budget_micro: int,
        answer: dict,
        request_id: str,
        now: datetime,
    ) -> Spent:
        """Charge ``epsilon_micro`` and store ``answer``, atomically; or raise
        :class:`BudgetExhausted`. A question already answered this period costs nothing and
        returns the stored answer instead of ``answer``."""
        if (earlier := await self.stored(partner, period, question)) is not None:
            return Spent(earlier, 0, await self.spent(partner, period), True)
        try:
            async with self._engine.begin() as conn:
                await insert_if_absent(
                    conn, BUDGETS, {"partner": partner, "period": period, "spent_micro": 0}
                )
                charged = await conn.execute(
                    update(BUDGETS)
                    .where(
                        BUDGETS.c.partner == partner,
                        BUDGETS.c.period == period,
                        BUDGETS.c.spent_micro + epsilon_micro <= budget_micro,
                    )
                    .values(spent_micro=BUDGETS.c.spent_micro + epsilon_micro)
                )
                if charged.rowcount != 1:
                    spent = await conn.scalar(
                        select(BUDGETS.c.spent_micro).where(
                            BUDGETS.c.partner == partner, BUDGETS.c.period == period
                        )
                    )
                    raise BudgetExhausted(int(spent or 0), budget_micro)
                row = {
                    "partner": partner,
                    "period": period,
                    "question": question,
                    "statistic": statistic,
                    "epsilon_micro": epsilon_micro,
                    "answer": orjson.dumps(answer).decode(),
                    "request_id": request_id,
                    "spent_at": now.astimezone(UTC),
                }
                if not await insert_if_absent(conn, SPENDS, row):
                    raise _Taken
                after = await conn.scalar(
                    select(BUDGETS.c.spent_micro).where(
                        BUDGETS.c.partner == partner, BUDGETS.c.period == period
                    )
                )
        except _Taken:
            earlier = await self.stored(partner, period, question)
            assert earlier is not None  # the racing request committed it
            return Spent(earlier, 0, await self.spent(partner, period), True)
        return Spent(answer, epsilon_micro, int(after or 0), False)
