"""Settle the writes whose intent the audit log holds without an outcome.

An intent without an outcome means its process stopped (or could not log the outcome)
between the two. For each one, the object is looked up at its source by the key the
mutation derived from its idempotency key, and the outcome is logged (``APPLIED`` or
``NOT_APPLIED``, ``by: reconcile``): the log then names every change at every source, and
says which intents came to nothing.

An intent is settled only when its process cannot still be writing: the process is gone
(same host, pid and start time no longer running) or the intent is older than
``after_seconds`` (for another host's process; longer than any request's deadline). A source
that cannot answer leaves the intent open for the next run. Concurrent reconcilers (several
workers starting at once) take one lock, so each intent gets one outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.health import reason_of
from connectors.sql.models import METADATA_BY_KIND
from schema.mutations import dispensing_finish
from security.audit import writes
from security.store import gateway_metadata

log = logging.getLogger("medfed.audit")
GATEWAY = "gateway"
_LOCK_KEY = 0x6D656466  # "medf": the advisory lock of reconcile on PostgreSQL


@dataclass(frozen=True)
class Settled:
    intent: int
    operation: str
    source: str
    object_id: str
    # APPLIED | NOT_APPLIED | OPEN (the source could not say) | FINISHED (a half-written
    # dispensing completed: object_id is the dispensing written)
    result: str
    reason: str | None = None


def _table(services: Any, write: writes.Write):
    if write.source == GATEWAY:
        return services.gateway_engine, gateway_metadata().tables[write.table], None
    source = services.registry.get(write.source)
    return source.engine, METADATA_BY_KIND[source.spec.kind].tables[write.table], source


async def applied(services: Any, write: writes.Write) -> bool:
    """Whether the write's change is at its source now (raises when it cannot be told)."""
    engine, table, source = _table(services, write)
    query = select(table.c[write.key]).where(table.c[write.key] == write.object_id)
    if write.applied_when is not None:
        query = query.where(table.c[write.applied_when].is_not(None))

    async def look() -> bool:
        async with engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    return await (source.guarded(look) if source is not None else look())


@contextlib.asynccontextmanager
async def _exclusive(engine: AsyncEngine) -> AsyncIterator[bool]:
    """One reconciler at a time for this gateway database; yields False if another runs."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            got = (
                await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY})
            ).scalar()
            try:
                yield bool(got)
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    lock_path = Path(f"{database}.reconcile.lock")
    with open(lock_path, "a+") as handle:  # noqa: ASYNC230 (a lock file: no data read)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _due(event: dict[str, Any], now: datetime, after: timedelta, only_gone: bool) -> bool:
    if writes.process_gone(event.get("process") or {}):
        return True
    if only_gone:
        return False
    return datetime.fromisoformat(event["time"]) <= now - after


async def reconcile(
    services: Any,
    recorder: Any,
    *,
    after_seconds: float = 300.0,
    only_gone: bool = False,
) -> list[Settled]:
    """Settle every due intent without an outcome; returns what was done (or left open)."""
    engine = recorder.engine
    await recorder.log()  # open the log (and the head) before reading its derived tables
    done: list[Settled] = []
    async with _exclusive(engine) as mine:
        if not mine:
            return done
        now = datetime.now(UTC)
        request_id = f"reconcile-{uuid.uuid4().hex[:16]}"
        for idx, event in await writes.pending(engine):
            if not _due(event, now, timedelta(seconds=after_seconds), only_gone):
                continue
            write = writes.Write.from_json(event["write"])
            try:
                async with asyncio.timeout(10):
                    found = await applied(services, write)
            except Exception as exc:  # the source cannot say now: leave it open
                reason = reason_of(exc)
                log.warning("intent %d left open: %s %s", idx, write.source, reason)
                done.append(
                    Settled(idx, write.operation, write.source, write.object_id, "OPEN", reason)
                )
                continue
            if not await writes.is_pending(engine, idx):
                continue  # settled meanwhile (the request itself logged it)
            result = writes.APPLIED if found else writes.NOT_APPLIED
            finished = None
            if dispensing_finish.concerns(write, result):
                # A crash between the hospital's DISPENSED and the pharmacy's row: finish it
                # first, so a source away leaves this intent open for the next run.
                try:
                    async with asyncio.timeout(10):
                        finished = await dispensing_finish.finish(
                            services, recorder, event, write, request_id
                        )
                except Exception as exc:
                    reason = reason_of(exc)
                    log.warning("intent %d left open: dispensing not finished (%s)", idx, reason)
                    done.append(
                        Settled(idx, write.operation, write.source, write.object_id, "OPEN", reason)
                    )
                    continue
            await recorder.record(
                writes.outcome_event(
                    intent=idx,
                    intent_event=event,
                    result=result,
                    by=writes.BY_RECONCILE,
                    request_id=request_id,
                )
            )
            log.warning("intent %d settled: %s %s", idx, write.operation, result)
            done.append(Settled(idx, write.operation, write.source, write.object_id, result))
            if finished is not None:
                done.append(Settled(idx, write.operation, *finished, "FINISHED"))
    return done
