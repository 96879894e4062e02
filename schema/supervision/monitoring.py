"""Fund monitoring for supervisors: spending against budget per region and month, the rules
hit most, institutions by warning rate, and the monthly clearing between provinces with its
reconciliation. Who sees what, and of which region, is the policy file's ``[[supervision]]``
(security.policy.supervision); every answer is an audited read (its view and period, never a
row), refused ones too."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from sqlalchemy import String, func, select

from connectors.supervision import monitoring as mon
from schema.errors import bad_input, forbidden
from schema.mutations import lookups
from schema.types.common import yuan
from schema.types.filings import Clearing, ClearingReconciliation
from security import warnings as store
from security.audit.events import note_supervision_read

MONTH = re.compile(r"^(19|20)\d\d-(0[1-9]|1[0-2])$")
MAX_MONTHS = 36
MONTHS_ARGS = "fromMonth and toMonth: YYYY-MM, both included, at most 36 months."


def scope(ctx: Any, field: str, view: str, region: str | None) -> str:
    """The region prefix this caller may see in ``view``, narrowed to ``region`` if asked."""
    note_supervision_read(ctx, f"Query.{field}")
    p = ctx.principal
    prefix = ctx.services.policy.supervision_scope(p.role, ctx.purpose, view, p.org)
    if prefix is None:
        raise forbidden(f"{field} is not open to this role and purpose ([[supervision]] {view})")
    if region is None:
        return prefix
    asked = _prefix(region)
    if asked is None:
        raise bad_input(
            f"{field}: region must be a six-digit region code",
            [{"path": ["region"], "reason": "must be a six-digit region code"}],
        )
    if not asked.startswith(prefix):
        raise forbidden(f"{field}: the region lies outside the caller's own region")
    return asked


def _prefix(region: str) -> str | None:
    from security.policy.supervision import region_prefix

    return region_prefix(region)


def months(first: str, last: str) -> list[str]:
    for name, value in (("fromMonth", first), ("toMonth", last)):
        if not MONTH.match(value):
            raise bad_input(
                f"{name} must be YYYY-MM", [{"path": [name], "reason": "must be YYYY-MM"}]
            )
    y, m = int(first[:4]), int(first[5:])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        if len(out) > MAX_MONTHS:
            raise bad_input(
                f"at most {MAX_MONTHS} months",
                [{"path": ["toMonth"], "reason": f"at most {MAX_MONTHS} months after fromMonth"}],
            )
    if not out:
        raise bad_input(
            "toMonth is before fromMonth",
            [{"path": ["toMonth"], "reason": "must not be before fromMonth"}],
        )
    return out


def _settlement_sources(ctx: Any) -> list:
    plat = lookups.platform_source(ctx)
    return [*ctx.registry.of_kind("bureau"), *([plat] if plat else [])]


@strawberry.type(description="The pooled fund's spending in one insured region and month.")
class FundSpending:
    region: str = strawberry.field(description="Insured place (参保地).")
    month: str
    settlements: int
    fund_pay: Decimal = strawberry.field(description="Paid by the pooled fund, yuan.")
    enrolled: int = strawberry.field(description="Persons enrolled on the month's first day.")
    budget: Decimal | None = strawberry.field(
        description="The month's budget: per_person_year / 12 x enrolled (benefits.toml)."
    )
    share: float | None = strawberry.field(description="fundPay / budget.")
    over_budget: bool


@strawberry.type(description="How often one rule was hit.")
class RuleHits:
    rule: str
    title: str
    grade: int
    warnings: int
    open: int = strawberry.field(description="Of them still OPEN or ACKNOWLEDGED.")


@strawberry.type(description="One institution's warnings against its settlements.")
class InstitutionWarningRate:
    institution_code: str
    settlements: int
    warnings: int
    rate: float = strawberry.field(description="warnings / settlements.")


def _warnings_where(prefix: str, first: str, last: str) -> list:
    t = store.WARNINGS
    where = [
        func.substr(func.coalesce(t.c.settled_at, t.c.found_at).cast(String), 1, 7) >= first,
        func.substr(func.coalesce(t.c.settled_at, t.c.found_at).cast(String), 1, 7) <= last,
    ]
    if prefix:
        where.append(
            t.c.insured_region.like(f"{prefix}%") | t.c.treatment_region.like(f"{prefix}%")
        )
    return where


def _engine(ctx: Any):
    engine = ctx.services.gateway_engine
    if engine is None:
        raise forbidden("fund supervision needs the gateway database")
    return engine


def reconcile(row: dict[str, Any], actual: mon.Actual | None) -> ClearingReconciliation:
    actual = actual or mon.Actual(0, 0, 0)
    differences = [
        f"{name}: the clearing says {said}, its settlements add up to {found}"
        for name, said, found in (
            ("settlementCount", row["settlement_count"], actual.settlements),
            ("total", yuan(row["total_fen"]), yuan(actual.total_fen)),
            ("fundPay", yuan(row["fund_pay_fen"]), yuan(actual.fund_fen)),
        )
        if said != found
    ]
    return ClearingReconciliation(
        settlements=actual.settlements,
        total=yuan(actual.total_fen),
        fund_pay=yuan(actual.fund_fen),
        matches=not differences,
        differences=differences,
    )


MISSING = "MISSING"  # the status of a clearing the platform should hold and does not


def missing_clearings(
    rows: list[dict[str, Any]], actual: dict[tuple[str, str, str], mon.Actual], prefix: str, now
) -> list[dict[str, Any]]:
    """A row for each (month, payer, payee) whose cross-province settlements the platform
    holds with no clearing row: a month the clearing skipped. Only months already over (a
    month is cleared after it ends) and only provinces within ``prefix``. Its id names what is
    missing (``none:YYYY-MM:PPQQ``); it has no amounts of its own."""
    this_month = f"{now.year:04d}-{now.month:02d}"
    held = {(r["month"], r["payer_province"], r["payee_province"]) for r in rows}
    out = []
    for month, payer, payee in sorted(set(actual) - held):
        if month >= this_month:
            continue
        if prefix and not (payer.startswith(prefix[:2]) or payee.startswith(prefix[:2])):
            continue
        out.append(
            {
                "clearing_id": f"none:{month}:{payer[:2]}{payee[:2]}",
                "month": month,
                "payer_province": payer,
                "payee_province": payee,
                "settlement_count": 0,
                "total_fen": 0,
                "fund_pay_fen": 0,
                "status": MISSING,
            }
        )
    return out


async def _keep_clearing_warnings(ctx: Any, rows: list[dict], recs: list) -> None:
    found = [
        store.NewWarning(
            rule="CLEARING_MISSING" if row["status"] == MISSING else "CLEARING_MISMATCH",
            grade=3,
            phase="POST",
            setl_id=None,
            mdtrt_id=None,
            source=lookups.platform_source(ctx).name,
            person_ref=None,
            institution_code=None,
            doctor_code=None,
            insured_region=row["payer_province"],
            treatment_region=row["payee_province"],
            settled_at=None,
            detail=(
                f"no clearing of {row['month']} for {row['payer_province']} paying "
                f"{row['payee_province']}: {rec.settlements} settlements, {rec.total} yuan"
                if row["status"] == MISSING
                else f"clearing {row['clearing_id']} of {row['month']}: "
                + "; ".join(rec.differences)
            ),
            clearing_id=row["clearing_id"],
        )
        for row, rec in zip(rows, recs, strict=True)
        if not rec.matches
    ]
    if found:
        await store.record(
            _engine(ctx),
            ctx.services.extras.get("audit"),
            found,
            principal=ctx.principal,
            purpose=str(ctx.purpose),
            request_id=ctx.request_id,
        )


@strawberry.type
class SupervisionQuery:
    @strawberry.field(
        description="The pooled fund's spending against budget per insured region and month "
        "(supervisors: [[supervision]] view spending). " + MONTHS_ARGS
    )
    async def fund_spending(
        self,
        info: strawberry.Info,
        from_month: str,
        to_month: str,
        region: Annotated[
            str | None, strawberry.argument(description="Only this region (within yours).")
        ] = None,
    ) -> list[FundSpending]:
        ctx = info.context
        prefix = scope(ctx, "fundSpending", "spending", region)
        span = months(from_month, to_month)
        ask = lookups.asker(ctx)
        spent = await mon.spending(ask, _settlement_sources(ctx), span[0], span[-1], prefix)
        persons = await mon.enrolled(ask, ctx.registry.of_kind("bureau"), span, prefix)
        benefits = ctx.services.benefits
        out = []
        for key in sorted(set(spent) | set(persons)):
            count, fund = spent.get(key, (0, 0))
            enrolled = persons.get(key, 0)
            per_year = benefits.budget_for(key[0])
            budget = None if per_year is None else per_year * enrolled // 12
            out.append(
                FundSpending(
                    region=key[0],
                    month=key[1],
                    settlements=count,
                    fund_pay=yuan(fund),
                    enrolled=enrolled,
                    budget=yuan(budget),
                    share=fund / budget if budget else None,
                    over_budget=budget is not None and fund > budget,
                )
            )
        return out

    @strawberry.field(
        description="The claims rules hit most, by warnings (view rules). " + MONTHS_ARGS
    )
    async def rules_hit(
        self,
        info: strawberry.Info,
        from_month: str,
        to_month: str,
        region: str | None = None,
    ) -> list[RuleHits]:
        ctx = info.context
        prefix = scope(ctx, "rulesHit", "rules", region)
        span = months(from_month, to_month)
        t = store.WARNINGS
        stmt = select(t.c.rule, t.c.grade, t.c.state).where(
            *_warnings_where(prefix, span[0], span[-1])
        )
        async with _engine(ctx).connect() as conn:
            rows = (await conn.execute(stmt)).all()
        total, still, grade = Counter(), Counter(), {}
        for rule, g, state in rows:
            total[rule] += 1
            grade[rule] = g
            if state not in store.CLOSED:
                still[rule] += 1
        rules = ctx.services.claims_rules
        return [
            RuleHits(
                rule=rule,
                title=rules.get(rule).title if rules.get(rule) else rule,
                grade=grade[rule],
                warnings=n,
                open=still[rule],
            )
            for rule, n in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    @strawberry.field(
        description="Institutions by warning rate, highest first (view institutions). "
        + MONTHS_ARGS
    )
    async def institution_warning_rates(
        self,
        info: strawberry.Info,
        from_month: str,
        to_month: str,
        region: str | None = None,
        first: int = 20,
    ) -> list[InstitutionWarningRate]:
        ctx = info.context
        prefix = scope(ctx, "institutionWarningRates", "institutions", region)
        span = months(from_month, to_month)
        if not 1 <= first <= 100:
            raise bad_input("first must be 1-100", [{"path": ["first"], "reason": "1-100"}])
        settled = await mon.settlements_by_institution(
            lookups.asker(ctx), _settlement_sources(ctx), span[0], span[-1], prefix
        )
        t = store.WARNINGS
        stmt = (
            select(t.c.institution_code, func.count(func.distinct(t.c.setl_id)))
            .where(*_warnings_where(prefix, span[0], span[-1]), t.c.setl_id.is_not(None))
            .group_by(t.c.institution_code)
        )
        async with _engine(ctx).connect() as conn:
            warned = dict((await conn.execute(stmt)).all())
        rows = [
            InstitutionWarningRate(
                institution_code=code,
                settlements=n,
                warnings=warned.get(code, 0),
                rate=warned.get(code, 0) / n,
            )
            for code, n in settled.items()
        ]
        rows.sort(key=lambda r: (-r.rate, r.institution_code))
        return rows[:first]

    @strawberry.field(
        description="The monthly clearings between provinces (清算) from the national "
        "platform, each reconciled against the cross-province settlements it covers; a "
        "difference is kept as a CLEARING_MISMATCH warning. A month, payer and payee whose "
        "settlements the platform holds with no clearing (a month already over) is listed "
        "with status MISSING and kept as a CLEARING_MISSING warning (view clearings). "
        + MONTHS_ARGS
    )
    async def clearings(
        self,
        info: strawberry.Info,
        from_month: str,
        to_month: str,
        province: Annotated[
            str | None,
            strawberry.argument(description="Only clearings this province pays or is paid."),
        ] = None,
    ) -> list[Clearing]:
        ctx = info.context
        prefix = scope(ctx, "clearings", "clearings", province)
        span = months(from_month, to_month)
        plat = lookups.platform_source(ctx)
        if plat is None:
            return []
        rows, actual = await mon.clearings(lookups.asker(ctx), plat, span[0], span[-1], prefix)
        rows += missing_clearings(rows, actual, prefix, ctx.now)
        rows.sort(key=lambda r: (r["month"], r["payer_province"], r["payee_province"]))
        recs = [
            reconcile(r, actual.get((r["month"], r["payer_province"], r["payee_province"])))
            for r in rows
        ]
        await _keep_clearing_warnings(ctx, rows, recs)
        out = []
        for r, rec in zip(rows, recs, strict=True):
            clearing = Clearing.from_row(r)
            clearing.reconciliation = rec
            out.append(clearing)
        return out
