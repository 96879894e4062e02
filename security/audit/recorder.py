"""The request path's one handle on the audit log: one :class:`AuditLog` per process.

The log is opened lazily in the running event loop (its group-commit flusher lives there)
and closed by the app's lifespan. ``record`` returns only once the event is durable in the
log, and raises :class:`AuditWriteError` otherwise: the caller answers 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from security.audit import alerts, index
from security.audit.log import AuditLog, AuditWriteError
from security.audit.settings import AuditSettings

log = logging.getLogger("medfed.audit")


class AuditRecorder:
    def __init__(self, engine: AsyncEngine, keys_dir: Path, settings: AuditSettings) -> None:
        self.engine = engine
        self.keys_dir = keys_dir
        self.settings = settings
        self._log: AuditLog | None = None
        self._opening: asyncio.Lock | None = None

    async def log(self) -> AuditLog:
        if self._log is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            async with self._opening:
                if self._log is None:
                    from security.audit import open_audit_log

                    try:
                        opened = open_audit_log(self.engine, self.keys_dir, self.settings.log)
                        await index.catch_up(self.engine)
                    except Exception as exc:
                        raise AuditWriteError(f"audit log unavailable: {exc}") from exc
                    self._log = opened
        return self._log

    async def record(self, event: Mapping[str, Any]) -> int:
        """Append ``event`` durably; index it and evaluate the alert rules. Returns its index."""
        audit_log = await self.log()
        receipt = await audit_log.append(event)
        try:
            async with self.engine.begin() as conn:
                await index.write_rows(conn, receipt.index, event)
                await alerts.evaluate(conn, self.settings.alerts, receipt.index, event)
        except Exception:
            # The event is durable in the log, which is the evidence; the index and alerts
            # are derived and `index.catch_up` rebuilds them at the next start.
            log.exception("audit event %d logged but not indexed", receipt.index)
        return receipt.index

    async def close(self) -> None:
        if self._log is not None:
            await self._log.close()
            self._log = None
