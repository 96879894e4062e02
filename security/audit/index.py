"""The auditors' index: filter columns per (event, person), derived from the log.

Rows are written right after each append from the event just logged, and
:func:`catch_up` rebuilds whatever is missing straight from ``audit_events``. The log is
the source of truth; this table only makes ``auditEvents`` filters cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, false, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from security.audit.events import AUDIT_CLASS
from security.audit.models import AuditEvent, AuditIndexRow
from security.identity.scope import region_of
from security.policy.audit_scope import AuditScope, Sight, parties_of

INDEX = AuditIndexRow.__table__
EVENTS = AuditEvent.__table__
CATCH_UP_CHUNK = 5000


def _classes(person: Mapping[str, Any]) -> str:
    classes = {
        f["class"]
        for key in ("read", "masked", "denied")
        for f in person.get(key, ())
        if f.get("class")
    }
    return "," + "".join(f"{c}," for c in sorted(classes))


def _audit_class(event: Mapping[str, Any]) -> str:
    part = event.get("auditLog")
    return f"{part['class']}," if isinstance(part, Mapping) and part.get("class") else ""


def _parties(event: Mapping[str, Any]) -> tuple[str, str]:
    parties = parties_of(event)
    regions = sorted({region_of(p) for p in parties})
    return "," + "".join(f"{p}," for p in parties), "," + "".join(f"{r}," for r in regions)


def index_rows(idx: int, event: Mapping[str, Any]) -> list[dict[str, Any]]:
    principal = event.get("principal") or {}
    own = _audit_class(event)
    party_orgs, party_regions = _parties(event)
    base = {
        "idx": idx,
        "at": datetime.fromisoformat(event["time"]),
        "kind": event.get("kind", ""),
        "sub": principal.get("sub"),
        "org": principal.get("org"),
        "role": principal.get("role"),
        "purpose": event.get("purpose"),
        "outcome": event.get("outcome", ""),
        "break_glass": bool(event.get("breakGlass")),
        "party_orgs": party_orgs,
        "party_regions": party_regions,
    }
    persons = event.get("persons") or []
    if not persons:
        return [{**base, "person": None, "field_classes": "," + own, "denied_unrelated": False}]
    return [
        {
            **base,
            "person": p.get("personId"),
            "field_classes": _classes(p) + own,
            "denied_unrelated": bool(p.get("denied")) and p.get("relation") == "NONE",
        }
        for p in persons
    ]


def derived_rows(idx: int, event: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """The log's ``derive`` hook: index rows written in the event's own transaction."""
    return [(INDEX, row) for row in index_rows(idx, event)]


async def write_rows(conn: AsyncConnection, idx: int, event: Mapping[str, Any]) -> None:
    await conn.execute(insert(INDEX), index_rows(idx, event))


def event_of_entry(entry: bytes) -> tuple[int, dict[str, Any], str]:
    """(index, event, logged_at) of a stored leaf."""
    raw = orjson.loads(entry)
    return raw["index"], raw["event"], raw["logged_at"]


async def catch_up(engine: AsyncEngine) -> int:
    """Index every logged event the index does not have yet; returns how many."""
    done = 0
    while True:
        async with engine.begin() as conn:
            high = (await conn.execute(select(func.max(INDEX.c.idx)))).scalar()
            start = -1 if high is None else high
            rows = (
                await conn.execute(
                    select(EVENTS.c.idx, EVENTS.c.entry)
                    .where(EVENTS.c.idx > start)
                    .order_by(EVENTS.c.idx)
                    .limit(CATCH_UP_CHUNK)
                )
            ).all()
            for idx, entry in rows:
                _, event, _ = event_of_entry(entry)
                await write_rows(conn, idx, event)
        done += len(rows)
        if len(rows) < CATCH_UP_CHUNK:
            return done


@dataclass(frozen=True)
class EventFilter:
    person: str | None = None
    org: str | None = None
    principal: str | None = None
    role: str | None = None
    purpose: str | None = None
    outcome: str | None = None
    break_glass: bool | None = None
    field_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    pending_writes: bool = False  # only write intents that no outcome names
    # The auditor's scope (None: the caller is not an auditor, e.g. a patient's own log).
    scope: AuditScope | None = None

    def where(self) -> list[Any]:
        c = INDEX.c
        out: list[Any] = scope_clauses(self.scope)
        for column, value in (
            (c.person, self.person),
            (c.org, self.org),
            (c.sub, self.principal),
            (c.role, self.role),
            (c.purpose, self.purpose),
            (c.outcome, self.outcome),
            (c.break_glass, self.break_glass),
        ):
            if value is not None:
                out.append(column == value)
        if self.field_class is not None:
            out.append(c.field_classes.contains(f",{self.field_class},", autoescape=True))
        if self.field_class != AUDIT_CLASS:
            # Reads of the log itself are asked for by name (fieldClass "audit"); otherwise
            # every auditor query would push the accesses it looks for off the first page.
            out.append(~c.field_classes.contains(f",{AUDIT_CLASS},", autoescape=True))
        if self.since is not None:
            out.append(c.at >= self.since)
        if self.until is not None:
            out.append(c.at < self.until)
        if self.pending_writes:
            from security.audit.writes import WRITES, pending_clause

            out.append(c.idx.in_(select(WRITES.c.idx).where(pending_clause())))
        return out


def scope_clauses(scope: AuditScope | None) -> list[Any]:
    """What keeps an auditor's queries inside its scope ([audit_scope] of the policy)."""
    if scope is None or scope.sight is Sight.ALL:
        return []
    if scope.sight is Sight.PARTIES:
        return [INDEX.c.party_orgs.contains(f",{scope.org},", autoescape=True)]
    if scope.sight is Sight.REGION:
        return [INDEX.c.party_regions.contains(f",{scope.prefix}", autoescape=True)]
    return [false()]


async def in_scope(conn: AsyncConnection, idx: int, scope: AuditScope | None) -> bool:
    """Whether logged event ``idx`` lies in ``scope``."""
    query = select(INDEX.c.idx).where(INDEX.c.idx == idx, *scope_clauses(scope)).limit(1)
    return (await conn.execute(query)).first() is not None


async def scoped_entries(
    engine: AsyncEngine, scope: AuditScope | None, after: int, limit: int
) -> list[tuple[int, bytes]]:
    """Up to ``limit`` stored leaves in log order with index > ``after``, in ``scope`` only:
    what an auditor's export holds (each line checkable against an inclusion proof)."""
    chosen = select(INDEX.c.idx).where(INDEX.c.idx > after, *scope_clauses(scope)).distinct()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(EVENTS.c.idx, EVENTS.c.entry)
                .where(EVENTS.c.idx.in_(chosen))
                .order_by(EVENTS.c.idx)
                .limit(limit)
            )
        ).all()
    return [(idx, bytes(entry)) for idx, entry in rows]


async def find_events(
    engine: AsyncEngine, flt: EventFilter, before: int | None, limit: int
) -> list[tuple[int, dict[str, Any], str]]:
    """Up to ``limit`` logged events matching ``flt``, newest first, with index < before."""
    where = flt.where()
    if before is not None:
        where.append(INDEX.c.idx < before)
    async with engine.connect() as conn:
        ids = (
            (
                await conn.execute(
                    select(INDEX.c.idx)
                    .where(and_(True, *where))
                    .distinct()
                    .order_by(INDEX.c.idx.desc())
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        return await read_events(conn, ids)


async def read_events(
    conn: AsyncConnection, ids: Sequence[int]
) -> list[tuple[int, dict[str, Any], str]]:
    if not ids:
        return []
    rows = (
        await conn.execute(select(EVENTS.c.idx, EVENTS.c.entry).where(EVENTS.c.idx.in_(list(ids))))
    ).all()
    by_idx = {idx: event_of_entry(entry) for idx, entry in rows}
    return [by_idx[i] for i in ids if i in by_idx]
