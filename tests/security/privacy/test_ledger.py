"""The privacy ledger on SQLite and PostgreSQL: concurrent spends never exceed the budget,
budgets renew per period, the same question is answered from the ledger without a charge."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from security.privacy.ledger import BudgetExhausted, PrivacyLedger, period_end, period_of

NOW = datetime(2020, 11, 15, 12, tzinfo=UTC)


@pytest.fixture
async def ledger(make_spec):
    spec = make_spec("gateway")
    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    yield PrivacyLedger(engine)
    await engine.dispose()


async def _spend(
    ledger, question, micro, budget=1_000_000, partner="researcher:110000", now=NOW, period="month"
):
    return await ledger.spend(
        partner=partner,
        period=period_of(now, period),
        question=question,
        statistic="settlement",
        epsilon_micro=micro,
        budget_micro=budget,
        answer={"question": question},
        request_id=f"r-{question}",
        now=now,
    )


async def test_concurrent_spends_never_exceed_the_budget(ledger):
    # 40 different questions of 0.1 epsilon at once against a budget of 1: exactly 10 fit.
    outcomes = await asyncio.gather(
        *(_spend(ledger, f"q{i}", 100_000) for i in range(40)), return_exceptions=True
    )
    charged = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BudgetExhausted)]
    assert len(charged) == 10 and len(refused) == 30
    assert all(not o.reused and o.charged_micro == 100_000 for o in charged)
    assert await ledger.spent("researcher:110000", "2020-11") == 1_000_000
    assert await ledger.questions("researcher:110000", "2020-11") == 10


async def test_a_spend_that_does_not_fit_is_refused_whole(ledger):
    await _spend(ledger, "a", 700_000)
    with pytest.raises(BudgetExhausted) as refused:
        await _spend(ledger, "b", 300_001)
    assert refused.value.spent_micro == 700_000
    assert (await _spend(ledger, "c", 300_000)).spent_micro == 1_000_000  # the boundary fits
    assert await ledger.stored("researcher:110000", "2020-11", "b") is None


async def test_the_same_question_racing_is_charged_once(ledger):
    outcomes = await asyncio.gather(*(_spend(ledger, "same", 200_000) for _ in range(8)))
    assert sum(o.charged_micro for o in outcomes) == 200_000
    assert sum(1 for o in outcomes if o.reused) == 7
    assert {o.answer["question"] for o in outcomes} == {"same"}
    assert await ledger.spent("researcher:110000", "2020-11") == 200_000


async def test_budgets_renew_per_period_and_partners_are_apart(ledger):
    await _spend(ledger, "a", 1_000_000)
    with pytest.raises(BudgetExhausted):
        await _spend(ledger, "b", 1)
    december = datetime(2020, 12, 1, 0, 0, tzinfo=UTC)
    renewed = await _spend(ledger, "b", 1_000_000, now=december)
    assert renewed.spent_micro == 1_000_000 and not renewed.reused
    # The same question in a new period is a new answer (and a new charge).
    again = await _spend(ledger, "a", 500_000, budget=2_000_000, now=december)
    assert not again.reused
    other = await _spend(ledger, "a", 1_000_000, partner="researcher:120000")
    assert not other.reused and other.spent_micro == 1_000_000


@pytest.mark.parametrize(
    ("period", "key", "end"),
    [
        ("day", "2020-11-15", datetime(2020, 11, 16, tzinfo=UTC)),
        ("week", "2020-W46", datetime(2020, 11, 16, tzinfo=UTC)),
        ("month", "2020-11", datetime(2020, 12, 1, tzinfo=UTC)),
        ("quarter", "2020-Q4", datetime(2021, 1, 1, tzinfo=UTC)),
        ("year", "2020", datetime(2021, 1, 1, tzinfo=UTC)),
    ],
)
def test_periods(period, key, end):
    assert period_of(NOW, period) == key
    assert period_end(NOW, period) == end
