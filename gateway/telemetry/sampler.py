"""Gauges read from state rather than counted on a path: every source's health (so a source
nobody asked still shows), each live key's creation time, and the privacy budget each partner
has spent in its newest period (from the ledger in the gateway database)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from gateway.telemetry import metrics
from gateway.telemetry.sources import state_of
from schema.extracts.produce import KEYRING

log = logging.getLogger("medfed.telemetry")
EVERY_SECONDS = 15.0


async def sample(services: Any) -> None:
    for source in [*services.registry, *services.registry.peers()]:
        metrics.SOURCE_STATE.labels(source.name).set(state_of(source))
    keyring = services.extras.get(KEYRING)
    for record in getattr(keyring, "records", {}).values():
        if record.retired is None:
            with contextlib.suppress(ValueError):
                created = datetime.fromisoformat(record.created).timestamp()
                metrics.KEY_CREATED.labels(record.key_id, record.purpose).set(created)
    if services.gateway_engine is not None:
        await _budgets(services.gateway_engine)


async def _budgets(engine: Any) -> None:
    from security.privacy.ledger import BUDGETS

    newest = (
        select(BUDGETS.c.partner, func.max(BUDGETS.c.period).label("period"))
        .group_by(BUDGETS.c.partner)
        .subquery()
    )
    query = select(BUDGETS.c.partner, BUDGETS.c.period, BUDGETS.c.spent_micro).join(
        newest,
        (BUDGETS.c.partner == newest.c.partner) & (BUDGETS.c.period == newest.c.period),
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    for partner, period, spent in rows:
        metrics.BUDGET_SPENT.labels(partner, period).set(spent / 1_000_000)


async def sample_forever(services: Any, every: float = EVERY_SECONDS) -> None:
    while True:
        try:
            await sample(services)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a gauge that cannot be read now is read next time
            log.warning("telemetry sample failed: %s", type(exc).__name__)
        await asyncio.sleep(every)
