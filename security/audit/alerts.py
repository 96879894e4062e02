"""Alert rules evaluated as each event is logged (``[audit.alerts]``).

* ``BREAK_GLASS``: any emergency access;
* ``VOLUME_SPIKE``: a principal read more distinct persons than ``volume_persons`` within
  ``volume_window_seconds`` (once per principal per window);
* ``PROBING``: ``probing_denials`` denied accesses to persons the principal has no relation
  to (relation NONE) within ``probing_window_seconds`` (once per principal per window);
* ``OFF_HOURS``: personal data read outside the configured working hours.

Alerts are stored in ``audit_alerts`` (``auditAlerts`` serves them) and logged as warnings.
They point at the logged event by its index, so each is checkable against the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from security.audit.models import AuditAlert, AuditIndexRow
from security.audit.settings import AlertRules

log = logging.getLogger("medfed.audit.alerts")
ALERTS = AuditAlert.__table__
INDEX = AuditIndexRow.__table__


def _reads(event: Mapping[str, Any]) -> bool:
    return any(p.get("read") or p.get("masked") for p in event.get("persons") or ())


async def _recent_alert(conn: AsyncConnection, rule: str, sub: str, since: datetime) -> bool:
    found = await conn.execute(select(ALERTS.c.id).where(
        ALERTS.c.rule == rule, ALERTS.c.sub == sub, ALERTS.c.at >= since).limit(1))
    return found.first() is not None


async def evaluate(conn: AsyncConnection, rules: AlertRules, idx: int,
                   event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Store and return the alerts this event fires. Call after its index rows exist."""
    principal = event.get("principal") or {}
    sub, org = principal.get("sub"), principal.get("org")
    at = datetime.fromisoformat(event["time"])
    fired: list[dict[str, Any]] = []

    def fire(rule: str, detail: str, person: str | None = None) -> None:
        fired.append({"idx": idx, "at": at, "rule": rule, "sub": sub, "org": org,
                      "person": person, "detail": detail})

    persons = event.get("persons") or []
    if rules.break_glass and event.get("breakGlass"):
        refs = [p["personId"] for p in persons if p.get("personId")]
        fire("BREAK_GLASS", f"emergency access by {sub} ({org}) to {len(refs)} person(s)",
             refs[0] if len(refs) == 1 else None)

    if sub and _reads(event):
        since = at - timedelta(seconds=rules.volume_window_seconds)
        count = (await conn.execute(select(func.count(func.distinct(INDEX.c.person))).where(
            and_(INDEX.c.sub == sub, INDEX.c.at >= since, INDEX.c.person.is_not(None),
                 INDEX.c.field_classes != ",")))).scalar_one()
        if count > rules.volume_persons and not await _recent_alert(
                conn, "VOLUME_SPIKE", sub, since):
            fire("VOLUME_SPIKE", f"{sub} read {count} distinct persons within "
                 f"{rules.volume_window_seconds}s (threshold {rules.volume_persons})")

    if sub and any(p.get("denied") and p.get("relation") == "NONE" for p in persons):
        since = at - timedelta(seconds=rules.probing_window_seconds)
        count = (await conn.execute(select(func.count()).where(
            and_(INDEX.c.sub == sub, INDEX.c.at >= since,
                 INDEX.c.denied_unrelated.is_(True))))).scalar_one()
        if count >= rules.probing_denials and not await _recent_alert(
                conn, "PROBING", sub, since):
            fire("PROBING", f"{sub} was denied {count} times on unrelated persons within "
                 f"{rules.probing_window_seconds}s (threshold {rules.probing_denials})")

    hours = rules.working_hours()
    if hours is not None and _reads(event):
        local = at.astimezone(ZoneInfo(rules.timezone)).time()
        start, end = hours
        inside = start <= local < end if start <= end else (local >= start or local < end)
        if not inside:
            fire("OFF_HOURS", f"personal data read at {local:%H:%M} {rules.timezone}, outside "
                 f"{rules.hours}")

    if fired:
        await conn.execute(insert(ALERTS), fired)
        for alert in fired:
            log.warning("audit alert %s at event %d: %s", alert["rule"], idx, alert["detail"])
    return fired
