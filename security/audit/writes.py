"""The audit events of a write: its *intent*, logged durably before the write reaches a
source, and its *outcome*, logged after. So no change exists at a source that no event names.

An intent names where the change will land (source, table, the key column and the object's
id, which the mutation derives from the caller's idempotency key) and the process that makes
it; an outcome names the intent by its log index and says ``APPLIED`` or ``NOT_APPLIED``, and
who decided (``request`` itself, or ``reconcile`` after looking the object up at its source).
A write that succeeded has its outcome in the request's own event (``"writes"``), which is
durable before the answer leaves: one append fewer per mutation. A write that failed, and
every outcome reconcile decides, is an event of its own (``"phase": "OUTCOME"``).
An intent without an outcome means the process stopped, or its outcome could not be logged,
between the two: ``medfed audit reconcile`` and the gateway's start-up settle it.

Events hold no data value: the object's id is a pseudonymous key the API returns anyway, the
idempotency key only as a digest, the person only by ``personId``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from security.audit.events import EVENT_VERSION, now_iso, principal_of
from security.audit.models import AuditEvent, AuditWrite

WRITES = AuditWrite.__table__
EVENTS = AuditEvent.__table__
INTENT, OUTCOME = "INTENT", "OUTCOME"
APPLIED, NOT_APPLIED = "APPLIED", "NOT_APPLIED"
BY_REQUEST, BY_RECONCILE = "request", "reconcile"


@dataclass(frozen=True)
class Write:
    """Where one mutation's change lands, and how to find it there."""

    operation: str
    source: str  # a source name, or "gateway" for the gateway's own database
    table: str
    key: str  # the column holding object_id
    object_id: str
    # The change is present when this column of the row is set (a revocation), or, when
    # None, when the row exists at all (an insert).
    applied_when: str | None = None
    key_digest: str = ""  # SHA-256 of (caller, idempotency key): the key never appears

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        return {
            "operation": raw["operation"],
            "source": raw["source"],
            "table": raw["table"],
            "key": raw["key"],
            "objectId": raw["object_id"],
            "appliedWhen": raw["applied_when"],
            "keyDigest": raw["key_digest"],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Write:
        return cls(
            operation=raw["operation"],
            source=raw["source"],
            table=raw["table"],
            key=raw["key"],
            object_id=raw["objectId"],
            applied_when=raw.get("appliedWhen"),
            key_digest=raw.get("keyDigest", ""),
        )


def key_digest(caller: str, key: str) -> str:
    return hashlib.sha256(f"{caller}\0{key}".encode()).hexdigest()


@cache
def _process_start() -> str | None:
    """This process's start time in clock ticks since boot (Linux), to tell a live process
    from a later one that reused its pid."""
    try:
        return Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _process_start()}


def process_gone(process: Mapping[str, Any]) -> bool:
    """True when the process that logged an intent is known to be gone: it ran on this
    host and no process with its pid and start time runs now. Unknown means not gone."""
    if process.get("host") != socket.gethostname():
        return False
    pid = process.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    start = process.get("start")
    return start is not None and stat.rsplit(")", 1)[1].split()[19] != start


def intent_event(
    *,
    request_id: str,
    principal: Any,
    purpose: Any,
    person: str | None,
    write: Write,
    holder: str | None,
) -> dict[str, Any]:
    """The intent of ``write``; ``holder`` is the organisation holding its source, so the
    intent and its outcome fall in the scope of that holder's (and its region's) auditors."""
    return {
        "v": EVENT_VERSION,
        "kind": "MUTATION",
        "phase": INTENT,
        "time": now_iso(),
        "requestId": request_id,
        "principal": principal_of(principal),
        "purpose": str(purpose) if purpose is not None else None,
        "breakGlass": False,
        "persons": [{"personId": person, "read": [], "masked": [], "denied": []}] if person else [],
        "sources": {"touched": [write.source], "failed": []},
        "holders": [holder] if holder else [],
        "outcome": INTENT,
        "errors": [],
        "write": write.to_json(),
        "process": this_process(),
    }


def outcome_event(
    *,
    intent: int,
    intent_event: Mapping[str, Any],
    result: str,
    by: str,
    request_id: str,
    reason: str | None = None,
) -> dict[str, Any]:
    """The outcome of the intent logged at index ``intent`` (whose event is given)."""
    return {
        "v": EVENT_VERSION,
        "kind": "MUTATION",
        "phase": OUTCOME,
        "time": now_iso(),
        "requestId": request_id,
        "principal": intent_event.get("principal"),
        "purpose": intent_event.get("purpose"),
        "breakGlass": False,
        "persons": intent_event.get("persons") or [],
        "sources": {"touched": [intent_event["write"]["source"]], "failed": []},
        "holders": list(intent_event.get("holders") or []),
        "outcome": result,
        "errors": [reason] if reason else [],
        "write": {**intent_event["write"], "intent": intent, "result": result, "by": by},
        "intentRequestId": intent_event.get("requestId"),
    }


def outcome_of(intent: int, write: Write, result: str, by: str) -> dict[str, Any]:
    """One outcome as the request's own event carries it (``event["writes"]``)."""
    return {**write.to_json(), "intent": intent, "result": result, "by": by}


def outcomes_in(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The outcomes an event records: an outcome event's one, or a request's list."""
    if event.get("phase") == OUTCOME and isinstance(event.get("write"), Mapping):
        return [event["write"]]
    listed = event.get("writes")
    return [w for w in listed if isinstance(w, Mapping)] if isinstance(listed, list) else []


def derived_rows(idx: int, event: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """The log's derive hook for ``audit_writes``: a row per intent and per outcome."""
    if "time" not in event:
        return []
    at = datetime.fromisoformat(event["time"])
    if event.get("phase") == INTENT and isinstance(event.get("write"), Mapping):
        return [(WRITES, {"idx": idx, "intent": idx, "phase": INTENT, "at": at})]
    return [
        (WRITES, {"idx": idx, "intent": outcome["intent"], "phase": OUTCOME, "at": at})
        for outcome in outcomes_in(event)
        if isinstance(outcome.get("intent"), int)
    ]


def pending_clause():
    """``audit_writes`` rows of intents that no outcome names (for a select on WRITES)."""
    outcome = aliased(WRITES)
    return and_(
        WRITES.c.phase == INTENT,
        ~exists().where(and_(outcome.c.intent == WRITES.c.idx, outcome.c.phase == OUTCOME)),
    )


async def pending(
    engine: AsyncEngine, *, before: datetime | None = None, limit: int = 1000
) -> list[tuple[int, dict[str, Any]]]:
    """Intents without an outcome, oldest first: (log index, event)."""
    import orjson

    query = (
        select(EVENTS.c.idx, EVENTS.c.entry)
        .join(WRITES, WRITES.c.idx == EVENTS.c.idx)
        .where(pending_clause())
        .order_by(WRITES.c.idx)
        .limit(limit)
    )
    if before is not None:
        query = query.where(WRITES.c.at < before)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [(idx, orjson.loads(entry)["event"]) for idx, entry in rows]


async def is_pending(engine: AsyncEngine, intent: int) -> bool:
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                select(WRITES.c.idx).where(WRITES.c.intent == intent, WRITES.c.phase == OUTCOME)
            )
        ).first()
    return found is None
