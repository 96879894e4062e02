"""Statistics entry points: settlements, filings, internet+ care, mutual recognition, and the
caller's privacy budget. Every answer is an aggregate, graded by the policy file."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from connectors.statistics.catalogue import STATISTICS
from schema.errors import forbidden
from schema.statistics.grading import Ask, answer, partner_of
from schema.statistics.types import (
    DrugDimension,
    FilingDimension,
    InternetHospitalDimension,
    InternetServiceDimension,
    OpeningGrade,
    PrivacyBudget,
    RecognitionDimension,
    SettlementDimension,
    StatisticsAnswer,
    StatisticsFilter,
)
from schema.types.audit import auditor_scope
from security.audit.events import note_audit_read
from security.policy.grades import STATISTICS as GRADED
from security.policy.grades import Opening
from security.privacy import dp
from security.privacy.ledger import PrivacyLedger, period_end, period_of

# The policy file names statistic families; every one must exist here.
assert {name.split(".")[0] for name in STATISTICS} == set(GRADED), "grades and statistics differ"

EPSILON = "Epsilon to spend (DP grades only; default and maximum from the grade)."
MEASURES = (
    "Measures to answer (default all). Under DP the epsilon is split evenly among the "
    "measures released, so asking for fewer makes each more precise."
)


def _ask(statistic: str, group_by: list, f: StatisticsFilter | None, epsilon, measures=None) -> Ask:
    f = f or StatisticsFilter()
    months = None
    if f.month_from or f.month_to:
        months = (f.month_from or f.month_to or "", f.month_to or f.month_from or "")
    return Ask(
        statistic=statistic,
        group_by=tuple(d.value for d in group_by),
        equals={e.dimension: e.value for e in f.equals or []},
        months=months,
        region=f.region,
        epsilon=epsilon,
        measures=tuple(measures) if measures is not None else None,
    )


async def _answer(
    info: strawberry.Info, statistic: str, group_by, f, epsilon, measures=None
) -> StatisticsAnswer:
    ask = _ask(statistic, group_by, f, epsilon, measures)
    return StatisticsAnswer.of(await answer(info.context, ask))


@strawberry.type(description="Internet+ care (互联网+医疗服务, seed 000 §七(二)): three tables.")
class InternetCareStatistics:
    filter: strawberry.Private[Any]
    epsilon: strawberry.Private[Any]

    @strawberry.field(description="Internet revisits settled: volume, cost and fund spending.")
    async def services(
        self,
        info: strawberry.Info,
        group_by: list[InternetServiceDimension],
        measures: Annotated[list[str] | None, strawberry.argument(description=MEASURES)] = None,
    ) -> StatisticsAnswer:
        return await _answer(
            info, "internetCare.services", group_by, self.filter, self.epsilon, measures
        )

    @strawberry.field(description="Drugs of circulated prescriptions by class: items and cost.")
    async def drugs(
        self,
        info: strawberry.Info,
        group_by: list[DrugDimension],
        measures: Annotated[list[str] | None, strawberry.argument(description=MEASURES)] = None,
    ) -> StatisticsAnswer:
        return await _answer(
            info, "internetCare.drugs", group_by, self.filter, self.epsilon, measures
        )

    @strawberry.field(description="Internet hospitals in the directory (public, exact).")
    async def institutions(
        self, info: strawberry.Info, group_by: list[InternetHospitalDimension]
    ) -> StatisticsAnswer:
        return await _answer(info, "internetCare.institutions", group_by, None, None)


@strawberry.type(description="Statistics entry points (open data, 分级分类开放).")
class StatisticsQuery:
    @strawberry.field(
        description="Settlements from every bureau and the national platform: count, persons, "
        "total and in-policy cost, fund payment and fund share, grouped as asked."
    )
    async def settlement_statistics(
        self,
        info: strawberry.Info,
        group_by: list[SettlementDimension],
        filter: StatisticsFilter | None = None,
        epsilon: Annotated[float | None, strawberry.argument(description=EPSILON)] = None,
        measures: Annotated[list[str] | None, strawberry.argument(description=MEASURES)] = None,
    ) -> StatisticsAnswer:
        return await _answer(info, "settlement", group_by, filter, epsilon, measures)

    @strawberry.field(description="Filings (备案) by destination, category, channel and status.")
    async def filing_statistics(
        self,
        info: strawberry.Info,
        group_by: list[FilingDimension],
        filter: StatisticsFilter | None = None,
        epsilon: Annotated[float | None, strawberry.argument(description=EPSILON)] = None,
        measures: Annotated[list[str] | None, strawberry.argument(description=MEASURES)] = None,
    ) -> StatisticsAnswer:
        return await _answer(info, "filing", group_by, filter, epsilon, measures)

    @strawberry.field(
        description="Results shared by the hospitals, and the share other hospitals recognise "
        "(互认), by item and level."
    )
    async def recognition_statistics(
        self,
        info: strawberry.Info,
        group_by: list[RecognitionDimension],
        filter: StatisticsFilter | None = None,
        epsilon: Annotated[float | None, strawberry.argument(description=EPSILON)] = None,
        measures: Annotated[list[str] | None, strawberry.argument(description=MEASURES)] = None,
    ) -> StatisticsAnswer:
        return await _answer(info, "recognition", group_by, filter, epsilon, measures)

    @strawberry.field(
        description="Internet+ care: internet hospitals, service volume and cost, drug classes "
        "and cost, fund spending. Each table is answered (and, under DP, charged) on its own."
    )
    def internet_care_statistics(
        self,
        filter: StatisticsFilter | None = None,
        epsilon: Annotated[float | None, strawberry.argument(description=EPSILON)] = None,
    ) -> InternetCareStatistics:
        return InternetCareStatistics(filter=filter, epsilon=epsilon)

    @strawberry.field(
        description="Every partner's privacy budget this period that has been spent from, "
        "most spent first, from the ledger (security officers: role auditor, purpose AUDIT; "
        "partners within their audit scope). At most 100."
    )
    async def privacy_budgets(self, info: strawberry.Info) -> list[PrivacyBudget]:
        ctx = info.context
        note_audit_read(ctx, "Query.privacyBudgets")
        scope = auditor_scope(ctx, "privacyBudgets")
        engine = ctx.services.gateway_engine
        if engine is None:
            raise forbidden("the privacy budgets need the gateway database")
        grades = [g for g in ctx.services.policy.grades if g.opening is Opening.DP]
        now = ctx.now if ctx.now.tzinfo else ctx.now.astimezone()
        ledger = PrivacyLedger(engine)
        found = []
        for partner, period, spent in await ledger.spenders(
            {period_of(now, g.period) for g in grades}
        ):
            role, _, org = partner.partition(":")
            grade = next((g for g in grades if role in {r.value for r in g.roles}), None)
            if grade is None and partner == "public":
                grade = next((g for g in grades if g.partner == "public"), None)
            # A partner is in scope as a party of its own spends' audit events would be.
            if grade is None or period != period_of(now, grade.period):
                continue
            if not scope.covers([org] if org else []):
                continue
            budget = dp.epsilon_micro(grade.budget)
            found.append(
                PrivacyBudget(
                    partner=partner,
                    grade=OpeningGrade.DP,
                    period=period,
                    budget=budget / dp.MICRO,
                    spent=spent / dp.MICRO,
                    remaining=max(0, budget - spent) / dp.MICRO,
                    questions=await ledger.questions(partner, period),
                    renews_at=period_end(now, grade.period),
                    default_epsilon=grade.epsilon,
                    max_epsilon=grade.max_epsilon,
                )
            )
            if len(found) == 100:
                break
        return found

    @strawberry.field(
        description="What is left of the caller's privacy budget this period (DP grades)."
    )
    async def privacy_budget(self, info: strawberry.Info) -> PrivacyBudget:
        ctx = info.context
        grades = [
            g
            for g in ctx.services.policy.grades
            if g.opening is Opening.DP
            and ctx.principal.role in g.roles
            and ctx.purpose in g.purposes
        ]
        if not grades:
            raise forbidden("no differentially private grade for this role and purpose")
        grade = grades[0]
        engine = ctx.services.gateway_engine
        if engine is None:
            raise forbidden("the privacy budget needs the gateway database")
        ledger = PrivacyLedger(engine)
        partner = partner_of(ctx, grade)
        now = ctx.now if ctx.now.tzinfo else ctx.now.astimezone()
        period = period_of(now, grade.period)
        spent = await ledger.spent(partner, period)
        budget = dp.epsilon_micro(grade.budget)
        return PrivacyBudget(
            partner=partner,
            grade=OpeningGrade.DP,
            period=period,
            budget=budget / dp.MICRO,
            spent=spent / dp.MICRO,
            remaining=max(0, budget - spent) / dp.MICRO,
            questions=await ledger.questions(partner, period),
            renews_at=period_end(now, grade.period),
            default_epsilon=grade.epsilon,
            max_epsilon=grade.max_epsilon,
        )
