"""The request path's one handle on the audit log: one :class:`AuditLog` per process.

The log is opened lazily in the running event loop (its group-commit flusher lives there)
and closed by the app's lifespan. ``record`` returns only once the event is durable in the
log, and raises :class:`AuditWriteError` otherwise: the caller answers 503.

The auditors' index rows are written in the same transaction as the event (one commit, no
second writer contending for SQLite's lock). The alert rules are evaluated by one background
task, in log order and batched, so they add no latency to the request; an alert they fire
is logged as an event of its own. ``settled`` waits for them (auditor queries call it),
``close`` drains them. ``index.catch_up`` still rebuilds
a dropped or partial index from the log at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from security.audit import alert_state, alerts, index
from security.audit.log import AuditLog, AuditWriteError
from security.audit.outside import Publisher
from security.audit.settings import AuditSettings
from security.policy.audit_scope import parties_of

log = logging.getLogger("medfed.audit")


def _proof_of(audit_log: AuditLog):
    async def proof(old: int, new: int) -> list[bytes]:
        return (await audit_log.consistency_proof(old, new)).path

    return proof


class AuditRecorder:
    def __init__(
        self,
        engine: AsyncEngine,
        keys_dir: Path,
        settings: AuditSettings,
        profile: str = "standard",
        inline_when: Callable[[], bool] | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.engine = engine
        self.keys_dir = keys_dir
        self.settings = settings
        self.profile = profile  # the crypto profile: which algorithm signs checkpoints
        self._log: AuditLog | None = None
        self._opening: asyncio.Lock | None = None
        self._pending: asyncio.Queue[tuple[int, Mapping[str, Any]]] | None = None
        self._indexer: asyncio.Task | None = None
        self._alerts = alerts.AlertEvaluator(settings.alerts)
        self._inline_when = inline_when  # see AuditLog.inline_when
        # Checkpoints outside the database (the file of notes, the witnesses).
        self.publisher = publisher

    async def log(self) -> AuditLog:
        if self._log is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            async with self._opening:
                if self._log is None:
                    from security.audit import open_audit_log

                    try:
                        opened = open_audit_log(
                            self.engine, self.keys_dir, self.settings.log, self.profile
                        )
                        opened.inline_when = self._inline_when
                        if self.publisher is not None:
                            opened.on_checkpoint = self.publisher.published
                            self.publisher.proof = _proof_of(opened)
                        await index.catch_up(self.engine)
                    except Exception as exc:
                        raise AuditWriteError(f"audit log unavailable: {exc}") from exc
                    self._log = opened
        return self._log

    async def start(self) -> None:
        """Open the log and start its writer now (the app's startup), not on a request;
        sign what a process that died left unsigned, so its tail is signed (and outside)."""
        audit_log = await self.log()
        try:
            await audit_log.start()
            latest = await audit_log.latest_checkpoint()
            if await audit_log.size() > (latest.size if latest else 0):
                await audit_log.checkpoint()
        except Exception as exc:
            raise AuditWriteError(f"audit log unavailable: {exc}") from exc

    async def record(self, event: Mapping[str, Any]) -> int:
        """Append ``event`` durably; index it and evaluate the alert rules. Returns its index."""
        audit_log = await self.log()
        receipt = await audit_log.append(event)
        if self._pending is None:
            self._pending = asyncio.Queue()
            self._indexer = asyncio.create_task(self._index_forever(self._pending))
        self._pending.put_nowait((receipt.index, event))
        return receipt.index

    async def _index_forever(self, pending: asyncio.Queue) -> None:
        while True:
            batch = [await pending.get()]
            while not pending.empty():
                batch.append(pending.get_nowait())
            try:
                # The index rows were committed with the events themselves; a rule's alert
                # is an event of its own, whose row the log derives as it commits.
                fired = await self._alerts.evaluate(self.engine, batch)
                events = dict(batch)
                for alert in fired:
                    await self.record(
                        alert_state.opened_event(alert, parties_of(events[alert["idx"]]))
                    )
            except Exception:
                # The events are durable in the log, which is the evidence; only the rules'
                # verdicts on them are lost.
                log.exception(
                    "audit events %d-%d logged but their alert rules not evaluated",
                    batch[0][0],
                    batch[-1][0],
                )
            finally:
                for _ in batch:
                    pending.task_done()

    async def settled(self) -> None:
        """Wait until every event this process logged is indexed and its alerts evaluated."""
        if self._pending is not None:
            await self._pending.join()

    async def close(self) -> None:
        await self.settled()
        if self._indexer is not None:
            self._indexer.cancel()
            self._indexer = None
            self._pending = None
        if self._log is not None:
            await self._log.close()
            self._log = None
        if self.publisher is not None:
            await self.publisher.drain()
