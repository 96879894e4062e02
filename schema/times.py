"""Every time the API answers carries an offset, and all of them the same one: +08:00.

China Standard Time is where every record of this federation happened and what its pages show,
so a client never has to guess an offset or convert one time but not another. Two kinds of
stored time reach the API:

- a source's record times (a visit's, a settlement's, a result's) are stored without an
  offset, in China Standard Time (docs/sources.md); the ``DateTime`` scalar labels them so;
- the gateway's own times (audit events, alerts, consents, extract jobs, warnings) are stored
  as UTC. PostgreSQL returns them with their offset; SQLite drops it, so their readers pass
  them through ``stored`` first, which makes them UTC again.

The scalar then answers any aware time converted to +08:00, so an audit event logged at
``…T09:30:00+00:00`` reads ``…T17:30:00+08:00``: the same instant, written as every other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))


def stored(moment: datetime | None) -> datetime | None:
    """A gateway-table time as the aware UTC time it was written as (SQLite drops offsets)."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def answered(moment: datetime) -> str:
    """A time as the API writes it: ISO 8601 at +08:00, naive times taken as China Standard
    Time (a source's record times)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=CST)
    return aware.astimezone(CST).isoformat()
