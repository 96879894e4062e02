"""Fund monitoring read at the sources: the pooled fund's spending per insured region and month
(one GROUP BY per bureau and at the platform), the persons enrolled per region (for the
budget), settlements per institution (for warning rates), and the platform's monthly
clearings with what its cross-province settlements add up to (for reconciling them). Only
aggregates leave a source here; no personal row is read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.registry import Source
from connectors.sql.models import bureau, platform
from connectors.statistics.catalogue import month, province
from connectors.supervision.facts import settlement_table

Ask = Callable[[Source, Callable[[AsyncEngine], Awaitable[Any]]], Awaitable[Any]]
CLEARINGS = platform.Clearing.__table__
CROSS = platform.CrossSettlement.__table__
ENROLMENTS = bureau.Enrollment.__table__


async def _all(engine: AsyncEngine, stmt) -> list[tuple]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(stmt)]


def _like(column, prefix: str):
    return column.like(f"{prefix}%")


async def spending(
    ask: Ask, sources: Sequence[Source], first: str, last: str, prefix: str
) -> dict[tuple[str, str], tuple[int, int]]:
    """(insured region, YYYY-MM) -> (settlements, fund paid in fen), for months first..last."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for source in sources:
        t = settlement_table(source)
        m = month(t.c.setl_time)
        stmt = (
            select(t.c.insuplc_admdvs, m, func.count(), func.sum(t.c.fund_pay_fen))
            .where(m >= first, m <= last, _like(t.c.insuplc_admdvs, prefix))
            .group_by(t.c.insuplc_admdvs, m)
        )
        for region, when, n, fund in await ask(source, lambda e, s=stmt: _all(e, s)):
            count, paid = out.get((region, when), (0, 0))
            out[(region, when)] = (count + n, paid + int(fund or 0))
    return out


async def enrolled(
    ask: Ask, bureaus: Sequence[Source], months: Sequence[str], prefix: str
) -> dict[tuple[str, str], int]:
    """(pooling region, YYYY-MM) -> persons enrolled on the month's first day."""
    out: dict[tuple[str, str], int] = {}
    for when in months:
        day = date.fromisoformat(f"{when}-01")
        t = ENROLMENTS
        stmt = (
            select(t.c.pool_admdvs, func.count())
            .where(
                _like(t.c.pool_admdvs, prefix),
                t.c.begin_date <= day,
                (t.c.end_date.is_(None)) | (t.c.end_date >= day),
            )
            .group_by(t.c.pool_admdvs)
        )
        for source in bureaus:
            for region, n in await ask(source, lambda e, s=stmt: _all(e, s)):
                out[(region, when)] = out.get((region, when), 0) + n
    return out


async def settlements_by_institution(
    ask: Ask, sources: Sequence[Source], first: str, last: str, prefix: str
) -> dict[str, int]:
    """Institution -> settlements in months first..last, treated within ``prefix``."""
    out: dict[str, int] = {}
    for source in sources:
        t = settlement_table(source)
        m = month(t.c.setl_time)
        stmt = (
            select(t.c.institution_code, func.count())
            .where(m >= first, m <= last, _like(t.c.mdtrtarea_admvs, prefix))
            .group_by(t.c.institution_code)
        )
        for code, n in await ask(source, lambda e, s=stmt: _all(e, s)):
            out[code] = out.get(code, 0) + n
    return out


@dataclass(frozen=True, slots=True)
class Actual:
    settlements: int
    total_fen: int
    fund_fen: int


async def clearings(
    ask: Ask, plat: Source, first: str, last: str, prefix: str
) -> tuple[list[dict[str, Any]], dict[tuple[str, str, str], Actual]]:
    """The clearings of months first..last whose payer or payee province lies in ``prefix``,
    and what the platform's cross-province settlements of those months add up to per
    (month, payer, payee)."""
    c = CLEARINGS
    where = [c.c.month >= first, c.c.month <= last]
    if prefix:
        where.append(_like(c.c.payer_province, prefix[:2]) | _like(c.c.payee_province, prefix[:2]))
    stmt = select(c).where(*where).order_by(c.c.month, c.c.payer_province, c.c.payee_province)

    async def rows(engine: AsyncEngine) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]

    found = await ask(plat, rows)
    payer, payee = province(CROSS.c.insuplc_admdvs), province(CROSS.c.mdtrtarea_admvs)
    sums = (
        select(
            CROSS.c.clearing_month,
            payer,
            payee,
            func.count(),
            func.sum(CROSS.c.total_fen),
            func.sum(CROSS.c.fund_pay_fen),
        )
        .where(CROSS.c.clearing_month >= first, CROSS.c.clearing_month <= last)
        .group_by(CROSS.c.clearing_month, payer, payee)
    )
    actual = {
        (m, a, b): Actual(n, int(total or 0), int(fund or 0))
        for m, a, b, n, total, fund in await ask(plat, lambda e: _all(e, sums))
    }
    return found, actual
