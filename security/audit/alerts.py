"""Alert rules evaluated as each event is logged (``[audit.alerts]``).

* ``VOLUME_SPIKE``: a principal read more distinct persons than ``volume_persons`` within
  ``volume_window_seconds`` (once per principal per window; checked when the principal
  reads a person it has not read within the window, the only read that raises the count);
* ``PROBING``: ``probing_denials`` denied accesses to persons the principal has no relation
  to (relation NONE) within ``probing_window_seconds`` (once per principal per window);
* ``OFF_HOURS``: personal data read outside the configured working hours.

A fired alert is returned to the recorder, which logs it as an ``ALERT`` event; the log's
derive hook writes its ``audit_alerts`` row in that event's transaction
(:mod:`security.audit.alert_state`), so every alert an auditor reads is on the log. A
break-glass opens its alert itself, with the request's own event: no rule decides that.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from security.audit.models import AuditAlert, AuditIndexRow
from security.audit.settings import AlertRules

log = logging.getLogger("medfed.audit.alerts")
ALERTS = AuditAlert.__table__
INDEX = AuditIndexRow.__table__


def _read_persons(event: Mapping[str, Any]) -> list[str]:
    """Pseudonyms of the persons whose fields the event read or masked."""
    return [
        p["personId"]
        for p in event.get("persons") or ()
        if (p.get("read") or p.get("masked")) and p.get("personId")
    ]


async def _recent_alert(conn: AsyncConnection, rule: str, sub: str, since: datetime) -> bool:
    found = await conn.execute(
        select(ALERTS.c.id)
        .where(ALERTS.c.rule == rule, ALERTS.c.sub == sub, ALERTS.c.at >= since)
        .limit(1)
    )
    return found.first() is not None


Connect = Callable[[], Awaitable[AsyncConnection]]


class AlertEvaluator:
    """The rules of one process, evaluated in log order over batches of logged events.

    It remembers which (principal, person) reads this process logged recently: a read of a
    person the principal already read within the window cannot raise the principal's count
    of distinct persons, so the volume rule needs no query for it. That is the common case
    (a clinician or a patient opening the same record again), and it leaves such events
    with no database work at all. What it remembers are facts already durable in the index;
    forgetting (the memory is bounded) only costs a query.
    """

    def __init__(self, rules: AlertRules, remember: int = 100_000) -> None:
        self.rules = rules
        self._remember = remember
        self._reads: OrderedDict[tuple[str, str], datetime] = OrderedDict()

    async def evaluate(
        self, engine: AsyncEngine, batch: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> list[dict[str, Any]]:
        """The alerts the events of ``batch`` fire, in index order, for the caller to log.
        Call after their index rows exist. A connection is opened only if a rule needs one."""
        async with contextlib.AsyncExitStack() as stack:
            opened: list[AsyncConnection] = []

            async def connect() -> AsyncConnection:
                if not opened:
                    opened.append(await stack.enter_async_context(engine.begin()))
                return opened[0]

            fired: list[dict[str, Any]] = []
            for idx, event in sorted(batch, key=lambda item: item[0]):
                fired += await self._evaluate(connect, idx, event, fired)
        for alert in fired:
            log.warning(
                "audit alert %s at event %d: %s", alert["rule"], alert["idx"], alert["detail"]
            )
        return fired

    def _new_reads(self, sub: str, persons: list[str], at: datetime, since: datetime) -> bool:
        """Note the reads; whether any person was not read by ``sub`` since ``since``."""
        new = False
        for person in persons:
            key = (sub, person)
            last = self._reads.get(key)
            if last is None or last < since:
                new = True
            if last is None or at > last:
                self._reads[key] = at
            self._reads.move_to_end(key)
        while len(self._reads) > self._remember:
            self._reads.popitem(last=False)
        return new

    async def _evaluate(
        self,
        connect: Connect,
        idx: int,
        event: Mapping[str, Any],
        earlier: Sequence[Mapping[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        if event.get("kind") == "ALERT":
            return []  # an alert's own event: what it reports was evaluated already
        rules = self.rules
        principal = event.get("principal") or {}
        sub, org = principal.get("sub"), principal.get("org")
        at = datetime.fromisoformat(event["time"])
        fired: list[dict[str, Any]] = []

        def fire(rule: str, detail: str, person: str | None = None) -> None:
            fired.append(
                {
                    "idx": idx,
                    "at": at,
                    "rule": rule,
                    "sub": sub,
                    "org": org,
                    "person": person,
                    "detail": detail,
                }
            )

        def fired_in_batch(rule: str) -> bool:
            # Alerts of this batch are logged after it, so the table does not have them yet.
            return any(a["rule"] == rule and a["sub"] == sub for a in [*earlier, *fired])

        persons = event.get("persons") or []
        read = _read_persons(event)
        since = at - timedelta(seconds=rules.volume_window_seconds)
        if sub and read and self._new_reads(sub, read, at, since):
            conn = await connect()
            count = (
                await conn.execute(
                    select(func.count(func.distinct(INDEX.c.person))).where(
                        and_(
                            INDEX.c.sub == sub,
                            INDEX.c.at >= since,
                            INDEX.c.person.is_not(None),
                            INDEX.c.field_classes != ",",
                        )
                    )
                )
            ).scalar_one()
            if (
                count > rules.volume_persons
                and not fired_in_batch("VOLUME_SPIKE")
                and not await _recent_alert(conn, "VOLUME_SPIKE", sub, since)
            ):
                fire(
                    "VOLUME_SPIKE",
                    f"{sub} read {count} distinct persons within "
                    f"{rules.volume_window_seconds}s (threshold {rules.volume_persons})",
                )

        if sub and any(p.get("denied") and p.get("relation") == "NONE" for p in persons):
            conn = await connect()
            since = at - timedelta(seconds=rules.probing_window_seconds)
            count = (
                await conn.execute(
                    select(func.count()).where(
                        and_(
                            INDEX.c.sub == sub,
                            INDEX.c.at >= since,
                            INDEX.c.denied_unrelated.is_(True),
                        )
                    )
                )
            ).scalar_one()
            if (
                count >= rules.probing_denials
                and not fired_in_batch("PROBING")
                and not await _recent_alert(conn, "PROBING", sub, since)
            ):
                fire(
                    "PROBING",
                    f"{sub} was denied {count} times on unrelated persons within "
                    f"{rules.probing_window_seconds}s (threshold {rules.probing_denials})",
                )

        hours = rules.working_hours()
        if hours is not None and read:
            local = at.astimezone(ZoneInfo(rules.timezone)).time()
            start, end = hours
            inside = start <= local < end if start <= end else (local >= start or local < end)
            if not inside:
                fire(
                    "OFF_HOURS",
                    f"personal data read at {local:%H:%M} {rules.timezone}, outside {rules.hours}",
                )
        return fired
