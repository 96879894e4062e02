"""Whether a source can be trusted to answer right now, and why not.

A source is *watched, not trusted*: every use goes through :meth:`SourceHealth.guard`. A
failure is named by a stable reason code (:class:`Reason`), never an exception's class, so
answers, logs and ``/readyz`` can say ``FILE_REPLACED`` or ``UNREACHABLE`` and an operator can
act on it. Failures that say the source itself is gone or damaged (its file, its database,
its schema, its server) mark it *unavailable*: from then on requests are answered at once
with ``SOURCE_UNAVAILABLE`` and that reason, without touching it, while a background probe
retries with exponential backoff (``[health]`` settings) and marks it available again as soon
as it answers, with fresh connections. Failures of one request (a deadline, a bad query) are
answered the same way but leave the source available.

The guard raises :class:`SourceDown`; ``fan_out`` and the mutations' ``ask`` turn it into the
GraphQL error. Nothing here holds a data value: reasons are codes, details are short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import Field

from security.tables import Table

T = TypeVar("T")
log = logging.getLogger("medfed.sources")


class Reason(StrEnum):
    # The source itself (marks it unavailable until a probe succeeds)
    FILE_MISSING = "FILE_MISSING"  # the SQLite file is gone
    FILE_REPLACED = "FILE_REPLACED"  # another file (inode/device) now has its name
    FILE_TRUNCATED = "FILE_TRUNCATED"  # shorter than its header says, or empty
    FILE_CORRUPT = "FILE_CORRUPT"  # not a SQLite header, or SQLite reports damage
    IO_ERROR = "IO_ERROR"  # the disk failed the read
    UNREACHABLE = "UNREACHABLE"  # the database server refuses or drops connections
    DATABASE_MISSING = "DATABASE_MISSING"  # the server has no such database
    SCHEMA_MISSING = "SCHEMA_MISSING"  # its schema or tables are gone, or never migrated
    AUTH_FAILED = "AUTH_FAILED"  # the server refused our credentials
    OVERLOADED = "OVERLOADED"  # too many connections
    # One request only (the source stays available)
    LOCKED = "LOCKED"  # another process holds the write lock (WAL readers are not blocked)
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    QUERY_FAILED = "QUERY_FAILED"


ONE_REQUEST = frozenset({Reason.LOCKED, Reason.DEADLINE_EXCEEDED, Reason.QUERY_FAILED})

# PostgreSQL SQLSTATE classes and codes (asyncpg and SQLAlchemy both carry ``sqlstate``).
_SQLSTATE = {
    "3D000": Reason.DATABASE_MISSING,  # invalid_catalog_name
    "3F000": Reason.SCHEMA_MISSING,  # invalid_schema_name
    "42P01": Reason.SCHEMA_MISSING,  # undefined_table
    "28000": Reason.AUTH_FAILED,
    "28P01": Reason.AUTH_FAILED,
    "53300": Reason.OVERLOADED,  # too_many_connections
    "57P01": Reason.UNREACHABLE,  # admin_shutdown
    "57P02": Reason.UNREACHABLE,  # crash_shutdown
    "57P03": Reason.UNREACHABLE,  # cannot_connect_now (starting up, shutting down)
}
# SQLite reports by message only.
_SQLITE = (
    ("database is locked", Reason.LOCKED),
    ("database table is locked", Reason.LOCKED),
    ("unable to open database file", Reason.FILE_MISSING),
    ("file is not a database", Reason.FILE_CORRUPT),
    ("malformed", Reason.FILE_CORRUPT),
    ("disk i/o error", Reason.IO_ERROR),
    ("no such table", Reason.SCHEMA_MISSING),
)


class Reasoned(Exception):
    """A failure that names its own stable reason code (``reason``)."""

    reason: str


class SourceDown(Reasoned):
    """The source cannot answer this request; ``reason`` says why (a :class:`Reason`)."""

    def __init__(self, source: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{source}: {reason}{f' ({detail})' if detail else ''}")
        self.source = source
        self.reason = reason
        self.detail = detail


def _chain(exc: BaseException):
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack += [getattr(item, "orig", None), item.__cause__, item.__context__]


def reason_of(exc: BaseException) -> str:
    """The stable reason code of a failure (its own, for :class:`SourceDown` and peers)."""
    for item in _chain(exc):
        if isinstance(item, Reasoned):
            return item.reason
        if isinstance(item, TimeoutError):
            return Reason.DEADLINE_EXCEEDED
        state = getattr(item, "sqlstate", None) or getattr(item, "pgcode", None)
        if isinstance(state, str):
            if state in _SQLSTATE:
                return _SQLSTATE[state]
            if state.startswith("08"):  # connection_exception
                return Reason.UNREACHABLE
        if isinstance(item, sqlite3.Error):
            text = str(item).lower()
            for needle, reason in _SQLITE:
                if needle in text:
                    return reason
        if isinstance(item, ConnectionError | OSError) and not isinstance(item, sqlite3.Error):
            return Reason.UNREACHABLE
        name = type(item).__name__
        if name in ("ConnectionDoesNotExistError", "InterfaceError", "InternalClientError"):
            return Reason.UNREACHABLE
    return Reason.QUERY_FAILED


HealthSeconds = Annotated[float, Field(gt=0, le=3600)]


class HealthSettings(Table):
    """``[health]``: how an unavailable source is retried (seconds, more than 0, at most 3600)."""

    retry_initial_seconds: HealthSeconds = 0.5  # the first probe after a failure
    retry_max_seconds: HealthSeconds = 30.0  # backoff doubles up to this
    probe_timeout_seconds: HealthSeconds = 5.0  # one probe may take this long

    def mistake(self) -> tuple[str, str] | None:
        if self.retry_initial_seconds > self.retry_max_seconds:
            return "retry_initial_seconds", "must not be more than retry_max_seconds"
        return None


Probe = Callable[[], Awaitable[None]]  # raises when the source cannot answer
Check = Callable[[], None]  # raises SourceDown when the source changed under us (cheap)
Reset = Callable[[], Awaitable[None]]  # drop every connection, so the next ones are fresh


class SourceHealth:
    """The health of one source, its guard and its recovery loop."""

    def __init__(
        self,
        name: str,
        settings: HealthSettings,
        *,
        probe: Probe,
        reset: Reset,
        check: Check | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self._probe, self._reset, self._check = probe, reset, check
        self.reason: str | None = None
        self.since: float | None = None  # wall clock, for operators
        self.failures = 0  # consecutive failed probes
        self.next_probe: float | None = None  # monotonic
        self._recovering: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        return self.reason is None

    async def guard(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` against the source, or raise :class:`SourceDown`. The file check runs
        before (no read of a missing file) and after (no answer from a file replaced while
        it was read: what was read is then dropped)."""
        if self.reason is not None:
            raise SourceDown(self.name, self.reason)
        try:
            if self._check is not None:
                self._check()
            result = await work()
            if self._check is not None:
                self._check()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = reason_of(exc)
            if reason not in ONE_REQUEST:
                self.down(reason)
            raise SourceDown(self.name, reason) from exc
        return result

    def down(self, reason: str) -> None:
        """Mark the source unavailable (first reason wins) and start probing for it."""
        if self.reason is None:
            log.warning("source %s unavailable: %s", self.name, reason)
            self.reason, self.since, self.failures = reason, time.time(), 0
        if self._recovering is None or self._recovering.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop (a synchronous caller): the next guarded use probes
            self._recovering = loop.create_task(self._recover(), name=f"recover-{self.name}")

    def _delay(self) -> float:
        s = self.settings
        base = min(s.retry_max_seconds, s.retry_initial_seconds * 2 ** min(self.failures, 30))
        return base * random.uniform(0.8, 1.2)  # jitter: workers do not probe in step

    async def _recover(self) -> None:
        while self.reason is not None:
            delay = self._delay()
            self.next_probe = time.monotonic() + delay
            await asyncio.sleep(delay)
            try:
                await self._reset()
                async with asyncio.timeout(self.settings.probe_timeout_seconds):
                    await self._probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                reason = reason_of(exc)
                if reason != self.reason and reason not in ONE_REQUEST:
                    log.warning("source %s still unavailable: %s", self.name, reason)
                    self.reason = reason
                continue
            log.warning("source %s available again after %s", self.name, self.reason)
            self.reason = self.since = self.next_probe = None
            self.failures = 0

    def snapshot(self) -> dict[str, Any]:
        if self.reason is None:
            return {"health": "ok"}
        out: dict[str, Any] = {
            "health": "unavailable",
            "reason": self.reason,
            "since": self.since,
            "probes_failed": self.failures,
        }
        if self.next_probe is not None:
            out["retry_in_seconds"] = round(max(0.0, self.next_probe - time.monotonic()), 2)
        return out

    async def close(self) -> None:
        if self._recovering is not None:
            self._recovering.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # shutting down
                await self._recovering
            self._recovering = None
