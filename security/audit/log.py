"""The append-only audit log: group-committed appends, signed checkpoints, proofs.

One writer at a time across every process: each batch runs in a transaction that first
locks the ``audit_head`` row (PostgreSQL ``SELECT … FOR UPDATE``; SQLite ``BEGIN
IMMEDIATE``), reads the size and right edge of the tree, writes the new leaves and the
subtrees they complete, and moves the head. Indexes therefore come from the database, never
from process memory, and the log stays one gap-free tree however many workers append.

``append`` returns only after its batch committed; a failed write fails every caller in the
batch with :class:`AuditWriteError`, so the request path can refuse to answer unaudited.

Where the transaction runs: PostgreSQL (and in-memory SQLite) through the engine; a SQLite
file in the log's writer process (:mod:`security.audit.writer_process`), or on the loop's
own thread when a request is alone in flight (``inline_when``). Both SQLite paths run
:class:`security.audit.sqlite_append.SqliteAppender`; all three build leaves with
:mod:`security.audit.leaves`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import Field, PositiveInt
from sqlalchemy import DateTime, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from security.audit import merkle
from security.audit.leaves import (
    Derive,
    Receipt,
    apply_derived,
    canonical_event,
    checkpoint_due,
    derived,
    driver_insert,
    extend,
    make_entry,
)
from security.audit.models import HEAD_ID, AuditCheckpoint, AuditEvent, AuditHead, AuditNode
from security.audit.note import Checkpoint, sign_checkpoint
from security.audit.pg_append import Head, PgAppender, Written
from security.audit.signer import Signer
from security.audit.sqlite_append import LOCK_PATIENCE as SQLITE_LOCK_PATIENCE
from security.audit.sqlite_append import Appended, SqliteAppender, is_locked
from security.audit.writer_process import WriterError, WriterGone, WriterProcess
from security.errors import MedfedError
from security.tables import NonEmpty, Table

__all__ = [
    "AuditLog",
    "AuditLogConfig",
    "AuditLogError",
    "AuditWriteError",
    "Derive",
    "Receipt",
    "canonical_event",
    "make_entry",
]
log = logging.getLogger(__name__)
T = TypeVar("T")

EVENTS = AuditEvent.__table__
NODES = AuditNode.__table__
HEAD = AuditHead.__table__
CHECKPOINTS = AuditCheckpoint.__table__


class AuditWriteError(MedfedError):
    """The event was not durably logged; the caller must not proceed as if it were."""


class AuditLogError(MedfedError):
    """A request the log cannot answer (bad index or size, missing or damaged state)."""


class AuditLogConfig(Table):
    """The log's own tuning: the ``[audit]`` keys that are not the gateway's (settings.py)."""

    origin: NonEmpty = "medfed.local/audit"
    # The unsigned tail (what a kill -9 could leave for someone to cut unnoticed) is at most
    # this many events, or this many seconds of them; each checkpoint also goes outside.
    checkpoint_every: Annotated[int, Field(ge=1, le=100_000)] = 100
    checkpoint_seconds: Annotated[float, Field(ge=0.1, le=3600)] = 5.0
    # Extra wait for company before committing. Zero is best: callers that arrive while a
    # commit is in flight already share the next one, and a lone caller is not delayed.
    batch_window: Annotated[float, Field(ge=0, le=10)] = 0.0
    max_batch: PositiveInt = 1000
    bulk_chunk: PositiveInt = 10_000  # events per transaction in append_many
    sqlite_full_sync: bool = True  # fsync the WAL at each commit: durable across power loss
    # A lone request's event may commit on the event loop's thread (see inline_when); off,
    # every append goes through the writer process (fault tests kill it mid-append).
    inline_appends: bool = True
    checkpoint_on_close: bool = True


@dataclass(frozen=True)
class SignedCheckpoint:
    size: int
    root: bytes
    note: str
    created_at: datetime


@dataclass(frozen=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    root: bytes
    path: list[bytes] = field(default_factory=list)

    def verify(self) -> bool:
        return merkle.verify_inclusion(self.index, self.size, self.leaf_hash, self.path, self.root)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "leaf_hash": _b64(self.leaf_hash),
            "root": _b64(self.root),
            "inclusion_path": [_b64(h) for h in self.path],
        }


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    old_root: bytes
    new_size: int
    new_root: bytes
    path: list[bytes] = field(default_factory=list)

    def verify(self) -> bool:
        return merkle.verify_consistency(
            self.old_size, self.old_root, self.new_size, self.new_root, self.path
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "old_root": _b64(self.old_root),
            "new_size": self.new_size,
            "new_root": _b64(self.new_root),
            "consistency_path": [_b64(h) for h in self.path],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ConsistencyProof:
        """Parse a proof received from elsewhere; raises ``ValueError`` if malformed."""
        try:
            return cls(
                int(raw["old_size"]),
                _unb64(raw["old_root"]),
                int(raw["new_size"]),
                _unb64(raw["new_root"]),
                [_unb64(h) for h in raw["consistency_path"]],
            )
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ValueError(f"not a consistency proof: {exc}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _insert(engine: AsyncEngine, table):
    module = postgresql if engine.dialect.name == "postgresql" else sqlite
    return module.insert(table)


class AuditLog:
    """An audit log in the gateway database reached through ``engine`` (owned by the caller).

    Use one instance per process and event loop; call :meth:`close` on shutdown so pending
    appends finish and a final checkpoint is signed.
    """

    def __init__(
        self, engine: AsyncEngine, signer: Signer, config: AuditLogConfig | None = None
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.config = config or AuditLogConfig()
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._pending: list[tuple[bytes, Mapping[str, Any], asyncio.Future[Receipt]]] = []
        # Rows of derived tables (the auditors' index) written in the same transaction as
        # the events they come from: one commit, one lock, no second writer to wait for.
        self.derive: Derive | None = None
        # Whether an append may commit on the event loop's thread (SQLite file only): true
        # when the loop has nothing else to do meanwhile, e.g. one request in flight. The
        # commit then blocks the loop for its fsync but saves the trip to the writer process.
        self.inline_when: Callable[[], bool] | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._ready = False
        self._unsigned = False  # this process appended since its last checkpoint
        self._last_checkpoint_at = time.monotonic()
        dialect = engine.dialect
        self._bind_time = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect) or (
            lambda value: value
        )
        self._insert_events_sql = driver_insert(
            dialect, "audit_events", ("idx", "leaf_hash", "entry", "created_at")
        )
        self._insert_nodes_sql = driver_insert(dialect, "audit_nodes", ("level", "idx", "hash"))
        database = engine.url.database if self._is_sqlite else None
        # A SQLite file is written by this log's own writer process (writer_process.py);
        # PostgreSQL and in-memory SQLite through the engine.
        self._sqlite_file = Path(database) if database and database != ":memory:" else None
        self._writer: WriterProcess | None = None
        # Told of every checkpoint once it is stored (security.audit.outside.Publisher):
        # the file of signed notes and the witnesses, outside this database.
        self.on_checkpoint: Callable[[int, str], None] | None = None
        self._signed_in_transaction: list[tuple[int, str]] = []
        self._locked_head: Head | None = None  # the head the last locking write left
        self._inline: SqliteAppender | None = None  # this thread's connection, for inline
        # PostgreSQL: a batch in one compare-and-set statement on a held connection.
        self._pg: PgAppender | None = (
            PgAppender(engine, None, self.config.checkpoint_every, self._sign)
            if dialect.name == "postgresql"
            else None
        )

    # --- appending -------------------------------------------------------------------

    async def append(self, event: Mapping[str, Any]) -> Receipt:
        """Log one event; returns once it is durable. Concurrent calls share a commit."""
        event_json = canonical_event(event)
        if self._closed:
            raise AuditWriteError("the audit log is closed")
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():  # it also signs timed checkpoints
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._flusher(), name="audit-log-flusher")
        if (
            not self._pending
            and self._sqlite_file is not None
            and self.config.inline_appends
            and self.inline_when is not None
            and self.inline_when()
        ):
            # Nothing queued: commit now, right here (see inline_when). The head row first,
            # or the log's very first event would start the writer process for nothing.
            await self._ensure_head()
            done = self._append_inline(event_json, event)
            if done is not None:
                return done
        future: asyncio.Future[Receipt] = loop.create_future()
        self._pending.append((event_json, event, future))
        assert self._wakeup is not None
        self._wakeup.set()
        # The write goes on if the caller is cancelled: what the request did stays logged.
        return await asyncio.shield(future)

    def _append_inline(self, event_json: bytes, event: Mapping[str, Any]) -> Receipt | None:
        """Commit one event on this thread (a SQLite file whose head exists), or None when
        another writer holds the lock: the loop never waits for a lock, the queue does. A
        lone request then waits only for its own commit."""
        assert self._sqlite_file is not None
        try:
            if self._inline is None:
                self._inline = SqliteAppender(
                    self._sqlite_file,
                    full_sync=self.config.sqlite_full_sync,
                    checkpoint_every=self.config.checkpoint_every,
                    derive=self.derive,
                    patience=0,
                )
            done = self._inline.append([event_json], [event])
        except sqlite3.OperationalError as exc:
            if is_locked(exc):
                return None
            log.exception("audit write of 1 event failed")
            raise AuditWriteError(f"the audit log could not record the event: {exc}") from exc
        except Exception as exc:
            log.exception("audit write of 1 event failed")
            raise AuditWriteError(f"the audit log could not record the event: {exc}") from exc
        signed = False
        if done.checkpoint_due:
            try:
                note = self._note(done)
                self._inline.add_checkpoint(done.size, done.root, note)
                signed = True
                self._publish(done.size, note)
            except sqlite3.Error:
                # The event is durable; the checkpoint is signed when next due or timed.
                log.exception("audit checkpoint at size %d not stored", done.size)
        self._wrote(signed)
        return done.receipts()[0]

    def _note(self, done: Appended) -> str:
        """The signed checkpoint of the tree ``done`` left (the key stays in this process)."""
        return self._sign(done.size, done.root)

    def _sign(self, size: int, root: bytes) -> str:
        return sign_checkpoint(Checkpoint(self.config.origin, size, root), self.signer)

    async def start(self) -> None:
        """Make ready to append: the head row, and for a SQLite file the writer process.
        Optional (the first append does it), but it moves the process start off the first
        request."""
        await self._ensure_head()
        if self._sqlite_file is not None:
            await self._sqlite_writer().start()

    def _sqlite_writer(self) -> WriterProcess:
        assert self._sqlite_file is not None
        if self._writer is None:
            self._writer = WriterProcess(
                self._sqlite_file,
                full_sync=self.config.sqlite_full_sync,
                checkpoint_every=self.config.checkpoint_every,
                derive=self.derive,
            )
        return self._writer

    async def append_many(self, events: Iterable[Mapping[str, Any]]) -> list[Receipt]:
        """The bulk path: log many events in large transactions, bypassing the batcher."""
        receipts: list[Receipt] = []
        chunk: list[bytes] = []
        originals: list[Mapping[str, Any]] = []
        for event in events:
            chunk.append(canonical_event(event))
            originals.append(event)
            if len(chunk) >= self.config.bulk_chunk:
                receipts += await self._write(chunk, originals)
                chunk, originals = [], []
        if chunk:
            receipts += await self._write(chunk, originals)
        return receipts

    async def _flusher(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            timeout = None
            if self.config.checkpoint_seconds > 0:
                # Wake at least every checkpoint_seconds even when all is signed: appends
                # committed inline (not through this task) make the log unsigned too.
                timeout = self.config.checkpoint_seconds
                if self._unsigned:
                    elapsed = time.monotonic() - self._last_checkpoint_at
                    timeout = max(0.0, timeout - elapsed)
            try:
                await asyncio.wait_for(wakeup.wait(), timeout)
            except TimeoutError:
                if self._unsigned:
                    await self._timed_checkpoint()
                continue
            if not self._pending:
                wakeup.clear()
                if self._closed:
                    return
                continue
            if len(self._pending) < self.config.max_batch:
                # At least one turn of the loop, so callers woken together commit together.
                await asyncio.sleep(self.config.batch_window)
            batch = self._pending[: self.config.max_batch]
            del self._pending[: self.config.max_batch]
            if not self._pending and not self._closed:
                wakeup.clear()
            try:
                receipts = await self._write(
                    [data for data, _, _ in batch], [event for _, event, _ in batch]
                )
            except Exception as exc:
                log.exception("audit write of %d events failed", len(batch))
                error = AuditWriteError(f"the audit log could not record the event: {exc}")
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
            else:
                for (_, _, future), receipt in zip(batch, receipts, strict=True):
                    if not future.done():
                        future.set_result(receipt)

    async def _timed_checkpoint(self) -> None:
        try:
            await self.checkpoint()
        except Exception:
            # A missed timed checkpoint is retried on the next tick; appends are unaffected.
            log.exception("timed audit checkpoint failed")
            self._last_checkpoint_at = time.monotonic()

    async def close(self) -> None:
        """Finish pending appends, stop the batcher, and sign a final checkpoint."""
        self._closed = True
        if self._task is not None and not self._task.done():
            assert self._wakeup is not None
            self._wakeup.set()
            await self._task
        if self.config.checkpoint_on_close and self._unsigned:
            await self.checkpoint()
        if self._writer is not None:
            await self._writer.close()
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._pg is not None:
            await self._pg.close()

    # --- the write transaction ---------------------------------------------------------

    async def _write(
        self, event_jsons: Sequence[bytes], events: Sequence[Mapping[str, Any]] = ()
    ) -> list[Receipt]:
        if self._sqlite_file is not None:
            receipts, signed = await self._write_sqlite(event_jsons)
        elif self._pg is not None and (written := await self._write_pg(event_jsons, events)):
            receipts, signed = written.receipts, written.signed is not None
            if written.signed is not None:
                self._publish(*written.signed)
        else:  # an in-memory SQLite database, or a batch the one statement cannot take
            self._signed_in_transaction.clear()
            receipts, signed = await self._locked(
                lambda conn: self._write_locked(conn, event_jsons, events)
            )
            for size, note in self._signed_in_transaction:  # committed: now outside too
                self._publish(size, note)
            if self._pg is not None:  # the head it left is where the next statement starts
                self._pg.head = self._locked_head
        self._wrote(signed)
        return receipts

    async def _write_pg(
        self, event_jsons: Sequence[bytes], events: Sequence[Mapping[str, Any]]
    ) -> Written | None:
        assert self._pg is not None
        await self._ensure_head()
        self._pg.derive = self.derive  # set after construction by open_audit_log
        return await self._pg.append(event_jsons, events)

    async def _write_sqlite(self, event_jsons: Sequence[bytes]) -> tuple[list[Receipt], bool]:
        """The whole transaction in one request to the writer process; a checkpoint that
        became due is signed here, where the key is, and stored by the writer."""
        await self._ensure_head()
        writer = self._sqlite_writer()
        sent_at = datetime.now(UTC)
        try:
            done = await writer.append(event_jsons)
        except WriterGone as exc:
            # Killed with the batch in flight: it committed or it did not. What did is found
            # in the log; the rest goes to a new writer, so nothing is lost or logged twice.
            log.warning(
                "audit writer died mid-batch (%s); recovering %d events", exc, len(event_jsons)
            )
            try:
                return await self._recover(event_jsons, sent_at)
            except (WriterError, OperationalError, sqlite3.Error) as again:
                raise AuditWriteError(
                    f"the audit log could not record the events: {again}"
                ) from again
        except WriterError as exc:
            raise AuditWriteError(f"the audit log could not record the events: {exc}") from exc
        receipts = done.receipts()
        if not done.checkpoint_due:
            return receipts, False
        try:
            note = self._note(done)
            await writer.add_checkpoint(done.size, done.root, note)
            self._publish(done.size, note)
        except WriterError:
            # The events are durable; the checkpoint is signed when next due or timed.
            log.exception("audit checkpoint at size %d not stored", done.size)
            return receipts, False
        return receipts, True

    async def _recover(
        self, event_jsons: Sequence[bytes], sent_at: datetime
    ) -> tuple[list[Receipt], bool]:
        found = await committed_since(self.engine, event_jsons, sent_at - RECOVER_SLACK)
        missing = [e for e in event_jsons if e not in found]
        again: dict[bytes, Receipt] = {}
        signed = False
        if missing:
            done = await self._sqlite_writer().append(missing)  # the dead one was discarded
            again = dict(zip(missing, done.receipts(), strict=True))
            if done.checkpoint_due:
                try:
                    note = self._note(done)
                    await self._sqlite_writer().add_checkpoint(done.size, done.root, note)
                    self._publish(done.size, note)
                    signed = True
                except WriterError:
                    log.exception("audit checkpoint at size %d not stored", done.size)
        return [found.get(e) or again[e] for e in event_jsons], signed

    def _publish(self, size: int, note: str) -> None:
        if self.on_checkpoint is None:
            return
        try:
            self.on_checkpoint(size, note)
        except Exception:  # the checkpoint is stored; outside copies are best effort here
            log.exception("checkpoint %d not published outside the database", size)

    def _wrote(self, signed: bool) -> None:
        if signed:
            self._last_checkpoint_at = time.monotonic()
            self._unsigned = False
        elif not self._unsigned:
            # The first unsigned event starts the clock: none waits longer than
            # checkpoint_seconds for a signed checkpoint, and an idle log signs no more.
            self._last_checkpoint_at = time.monotonic()
            self._unsigned = True

    async def _locked(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in a transaction holding the log's write lock, and commit."""
        await self._ensure_head()
        async with self.engine.connect() as conn:
            return await self._locked_here(conn, work)

    async def _locked_here(
        self, conn: AsyncConnection, work: Callable[[AsyncConnection], Awaitable[T]]
    ) -> T:
        await self._begin_locked(conn)
        result = await work(conn)
        await conn.commit()
        return result

    async def _begin_locked(self, conn: AsyncConnection) -> None:
        if not self._is_sqlite:
            await conn.begin()
            return  # the head row is locked FOR UPDATE in _write_locked
        if self.config.sqlite_full_sync and not conn.info.get("audit_full_sync"):
            # Once per pooled connection (a round trip costs about a millisecond here). The
            # setting stays with the connection: other users of the gateway database get
            # the same durability, which none of them should mind.
            await conn.exec_driver_sql("PRAGMA synchronous=FULL")
            conn.info["audit_full_sync"] = True
        deadline = time.monotonic() + SQLITE_LOCK_PATIENCE
        while True:
            try:
                # IMMEDIATE takes the write lock before reading the head, so no other
                # process can move the head between our read and our write.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                await conn.rollback()
                await asyncio.sleep(0.01)

    async def _lock_head(self, conn: AsyncConnection):
        row = (
            await conn.execute(
                select(
                    HEAD.c.size,
                    HEAD.c.root,
                    HEAD.c.frontier,
                    # In the same round trip: is a checkpoint due?
                    select(func.coalesce(func.max(CHECKPOINTS.c.size), 0))
                    .scalar_subquery()
                    .label("signed_size"),
                )
                .where(HEAD.c.id == HEAD_ID)
                .with_for_update()
            )
        ).one_or_none()
        if row is None:
            raise AuditLogError("the audit log has no head row; run `medfed db upgrade`")
        return row

    async def _write_locked(
        self,
        conn: AsyncConnection,
        event_jsons: Sequence[bytes],
        events: Sequence[Mapping[str, Any]] = (),
    ) -> tuple[list[Receipt], bool]:
        row = await self._lock_head(conn)
        now = datetime.now(UTC)
        ext = extend(row.size, row.frontier, event_jsons, now, self._bind_time(now))
        # Plain driver executemany: SQLAlchemy's per-row parameter processing would cost
        # more than the hashing and the disk together on large batches.
        await conn.exec_driver_sql(self._insert_events_sql, ext.events)
        if ext.nodes:
            await conn.exec_driver_sql(self._insert_nodes_sql, ext.nodes)
        await apply_derived(conn, derived(self.derive, ext.receipts, events))
        await conn.execute(
            update(HEAD)
            .where(HEAD.c.id == HEAD_ID)
            .values(
                size=ext.frontier.size,
                root=ext.root,
                frontier=b"".join(ext.frontier.hashes()),
                updated_at=now,
            )
        )
        due = checkpoint_due(self.config.checkpoint_every, ext.frontier.size, row.signed_size)
        self._locked_head = Head(
            ext.frontier.size,
            ext.root,
            b"".join(ext.frontier.hashes()),
            ext.frontier.size if due else row.signed_size,
        )
        if due:
            note = await self._insert_checkpoint(conn, ext.frontier.size, ext.root, now)
            self._signed_in_transaction.append((ext.frontier.size, note))
            return ext.receipts, True
        return ext.receipts, False

    async def _ensure_head(self) -> None:
        if self._ready:
            return
        stmt = (
            _insert(self.engine, HEAD)
            .values(
                id=HEAD_ID,
                size=0,
                root=merkle.EMPTY_ROOT,
                frontier=b"",
                updated_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)
        self._ready = True

    # --- checkpoints -------------------------------------------------------------------

    async def _insert_checkpoint(
        self, conn: AsyncConnection, size: int, root: bytes, now: datetime
    ) -> str:
        note = sign_checkpoint(Checkpoint(self.config.origin, size, root), self.signer)
        await conn.execute(
            _insert(self.engine, CHECKPOINTS)
            .values(size=size, root=root, note=note, created_at=now)
            .on_conflict_do_nothing(index_elements=["size"])
        )
        return note

    async def checkpoint(self) -> SignedCheckpoint:
        """Sign the current tree head unless a checkpoint of that size exists, and return
        the checkpoint of the current size."""

        made: list[SignedCheckpoint] = []

        async def work(conn: AsyncConnection) -> SignedCheckpoint:
            head = await self._lock_head(conn)
            existing = await self._checkpoint_row(conn, head.size)
            if existing is not None:
                return existing
            await self._insert_checkpoint(conn, head.size, head.root, datetime.now(UTC))
            signed = await self._checkpoint_row(conn, head.size)
            assert signed is not None
            made.append(signed)
            return signed

        signed = await self._locked(work)
        for new in made:
            self._publish(new.size, new.note)
        self._last_checkpoint_at = time.monotonic()
        self._unsigned = False
        return signed

    async def _checkpoint_row(self, conn: AsyncConnection, size: int) -> SignedCheckpoint | None:
        row = (
            await conn.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.size == size))
        ).one_or_none()
        return (
            None if row is None else SignedCheckpoint(row.size, row.root, row.note, row.created_at)
        )

    async def latest_checkpoint(self) -> SignedCheckpoint | None:
        return await latest_checkpoint(self.engine)

    async def checkpoint_at(self, size: int) -> SignedCheckpoint | None:
        async with self.engine.connect() as conn:
            return await self._checkpoint_row(conn, size)

    # --- reading and proofs (the same functions exist without a log, for verifiers) ----

    async def size(self) -> int:
        return await log_size(self.engine)

    async def entry(self, index: int) -> bytes:
        return await read_entry(self.engine, index)

    async def root(self, size: int | None = None) -> bytes:
        return await tree_root(self.engine, size)

    async def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        return await inclusion_proof(self.engine, index, size)

    async def consistency_proof(
        self, old_size: int, new_size: int | None = None
    ) -> ConsistencyProof:
        return await consistency_proof(self.engine, old_size, new_size)


# How far before a lost batch was sent its events are looked for (clock steps, rounding).
RECOVER_SLACK = timedelta(seconds=5)


async def committed_since(
    engine: AsyncEngine, event_jsons: Sequence[bytes], since: datetime
) -> dict[bytes, Receipt]:
    """Which of these canonical events the log holds among those logged since ``since``
    (an event's canonical JSON carries its request id and time: it is unique)."""
    wanted = set(event_jsons)
    found: dict[bytes, Receipt] = {}
    head = b'{"event":'
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(EVENTS.c.idx, EVENTS.c.leaf_hash, EVENTS.c.entry)
            .where(EVENTS.c.created_at >= since)
            .order_by(EVENTS.c.idx)
        )
        for idx, leaf, entry in rows:
            event = bytes(entry)[len(head) : bytes(entry).rfind(b',"index":')]
            if event in wanted:
                found[event] = Receipt(idx, leaf)
    return found


async def latest_checkpoint(engine: AsyncEngine) -> SignedCheckpoint | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.size.desc()).limit(1))
        ).one_or_none()
    return None if row is None else SignedCheckpoint(row.size, row.root, row.note, row.created_at)


async def log_size(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        size = (await conn.execute(select(HEAD.c.size).where(HEAD.c.id == HEAD_ID))).scalar()
    return size or 0


async def read_entry(engine: AsyncEngine, index: int) -> bytes:
    """The stored leaf data of event ``index`` (canonical JSON, event inside)."""
    async with engine.connect() as conn:
        entry = (await conn.execute(select(EVENTS.c.entry).where(EVENTS.c.idx == index))).scalar()
    if entry is None:
        raise AuditLogError(f"no audit event {index}")
    return entry


async def tree_root(engine: AsyncEngine, size: int | None = None) -> bytes:
    async with engine.connect() as conn:
        size = await _checked_size(conn, size)
        (root,) = await range_hashes(conn, [(0, size)])
    return root


async def inclusion_proof(
    engine: AsyncEngine, index: int, size: int | None = None
) -> InclusionProof:
    """Proof that event ``index`` is in the tree of ``size`` events (default: all)."""
    async with engine.connect() as conn:
        size = await _checked_size(conn, size)
        if not 0 <= index < size:
            raise AuditLogError(f"event {index} is not in a log of {size} events")
        ranges = merkle.inclusion_ranges(index, size)
        hashes = await range_hashes(conn, [(index, index + 1), (0, size), *ranges])
    return InclusionProof(index, size, hashes[0], hashes[1], hashes[2:])


async def consistency_proof(
    engine: AsyncEngine, old_size: int, new_size: int | None = None
) -> ConsistencyProof:
    """Proof that the tree of ``new_size`` events (default: all) extends ``old_size``."""
    async with engine.connect() as conn:
        new_size = await _checked_size(conn, new_size)
        if not 0 <= old_size <= new_size:
            raise AuditLogError(f"no consistency proof from {old_size} to {new_size}")
        ranges = merkle.consistency_ranges(old_size, new_size)
        hashes = await range_hashes(conn, [(0, old_size), (0, new_size), *ranges])
    return ConsistencyProof(old_size, hashes[0], new_size, hashes[1], hashes[2:])


async def _checked_size(conn: AsyncConnection, size: int | None) -> int:
    current = (await conn.execute(select(HEAD.c.size).where(HEAD.c.id == HEAD_ID))).scalar() or 0
    if size is None:
        return current
    if not 0 <= size <= current:
        raise AuditLogError(f"the log has {current} events, not {size}")
    return size


async def range_hashes(
    conn: AsyncConnection,
    ranges: Sequence[tuple[int, int]],
    *,
    leaves_table: Any = EVENTS,
    nodes_table: Any = NODES,
    log_name: str = "audit",
) -> list[bytes]:
    """MTH of each leaf range, from O(log n) stored subtrees per range. The tables default to
    the audit log's; the records log passes its own (same columns: idx, leaf_hash; level,
    idx, hash)."""
    EVENTS, NODES = leaves_table, nodes_table
    plans = [merkle.aligned_subtrees(s, e) for s, e in ranges]
    wanted = {key for plan in plans for key in plan}
    found: dict[tuple[int, int], bytes] = {}
    leaves = [j for level, j in wanted if level == 0]
    if leaves:
        rows = await conn.execute(
            select(EVENTS.c.idx, EVENTS.c.leaf_hash).where(EVENTS.c.idx.in_(leaves))
        )
        found.update(((0, r.idx), r.leaf_hash) for r in rows)
    by_level: dict[int, list[int]] = {}
    for level, j in wanted:
        if level:
            by_level.setdefault(level, []).append(j)
    if by_level:
        rows = await conn.execute(
            select(NODES.c.level, NODES.c.idx, NODES.c.hash).where(
                or_(
                    *(
                        and_(NODES.c.level == level, NODES.c.idx.in_(js))
                        for level, js in by_level.items()
                    )
                )
            )
        )
        found.update(((r.level, r.idx), r.hash) for r in rows)
    missing = wanted - found.keys()
    if missing:
        raise AuditLogError(
            f"the stored tree lacks subtree {sorted(missing)[0]}; run `medfed {log_name} verify`"
        )
    return [
        merkle.fold_subtrees([found[k] for k in plan]) if plan else merkle.EMPTY_ROOT
        for plan in plans
    ]
