"""One SQLite audit append as one synchronous transaction on a plain ``sqlite3`` connection.

The audit writer process (:mod:`security.audit.writer_process`) runs it. The transaction is
the log's whole write: take SQLite's write lock (``BEGIN IMMEDIATE``), read the head, insert
the leaves, the subtrees they complete and the derived rows, move the head, commit. Nothing
is acknowledged before COMMIT returned, and with ``synchronous=FULL`` the commit has been
fsynced (durable across power loss; ``NORMAL``: across process crashes). Other processes
writing the same file serialize on the write lock, so indexes come from the database.

Checkpoints are signed by the gateway process, which holds the key: an append reports that
one is due and :meth:`SqliteAppender.add_checkpoint` stores the signed note.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import DateTime
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

from security.audit.leaves import (
    Derive,
    InsertOnce,
    Receipt,
    Update,
    checkpoint_due,
    derived,
    driver_insert,
    extend,
)
from security.audit.models import HEAD_ID

log = logging.getLogger("medfed.audit.writer")
LOCK_PATIENCE = 30.0  # seconds an append keeps asking SQLite for the write lock
_HEAD = (
    "SELECT size, root, frontier, (SELECT coalesce(max(size), 0) FROM "
    "audit_checkpoints) FROM audit_head WHERE id = ?"
)
_MOVE_HEAD = "UPDATE audit_head SET size = ?, root = ?, frontier = ?, updated_at = ? WHERE id = ?"
_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (size, root, note, created_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (size) DO NOTHING"
)


class NoHead(Exception):
    """The database has no audit head row: it was not migrated."""


@dataclass(frozen=True)
class Appended:
    """One committed batch: its first index, its leaf hashes, and the tree it left."""

    first: int
    leaves: list[bytes]
    size: int
    root: bytes
    checkpoint_due: bool

    def receipts(self) -> list[Receipt]:
        return [Receipt(self.first + i, leaf) for i, leaf in enumerate(self.leaves)]

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "first": self.first,
                "leaves": [h.hex() for h in self.leaves],
                "size": self.size,
                "root": self.root.hex(),
                "due": self.checkpoint_due,
            }
        )

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Appended:
        return cls(
            raw["first"],
            [bytes.fromhex(h) for h in raw["leaves"]],
            raw["size"],
            bytes.fromhex(raw["root"]),
            raw["due"],
        )


class SqliteAppender:
    def __init__(
        self,
        path: Path,
        *,
        full_sync: bool,
        checkpoint_every: int,
        derive: Derive | None = None,
        patience: float = LOCK_PATIENCE,
    ) -> None:
        self.checkpoint_every = checkpoint_every
        self.derive = derive
        self.patience = patience
        dialect = SQLiteDialect_pysqlite()
        self._dialect = dialect
        self._bind_time = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
        self._insert_events = driver_insert(
            dialect, "audit_events", ("idx", "leaf_hash", "entry", "created_at")
        )
        self._insert_nodes = driver_insert(dialect, "audit_nodes", ("level", "idx", "hash"))
        self._binders: dict[tuple[str, str], Any] = {}
        # mode=rw: a missing database is an error (run `medfed db upgrade`), not a new file.
        self.db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if full_sync else 'NORMAL'}")
        # No busy timeout: begin_immediate retries itself, so the patience is ours to set.
        self.db.execute("PRAGMA busy_timeout=0")

    def append(
        self, event_jsons: Sequence[bytes], events: Sequence[Mapping[str, Any]] | None = None
    ) -> Appended:
        """Commit ``event_jsons``; ``events`` are the same events as mappings, when the
        caller has them (else they are parsed, and only if derived rows need them)."""
        if events is None:
            events = [orjson.loads(e) for e in event_jsons] if self.derive else []
        db = self.db
        begin_immediate(db, self.patience)
        try:
            head = db.execute(_HEAD, (HEAD_ID,)).fetchone()
            if head is None:
                raise NoHead("the audit log has no head row; run `medfed db upgrade`")
            size, _root, frontier_blob, signed_size = head
            now = datetime.now(UTC)
            stamp = self._bind_time(now)
            ext = extend(size, frontier_blob, event_jsons, now, stamp)
            db.executemany(self._insert_events, ext.events)
            if ext.nodes:
                db.executemany(self._insert_nodes, ext.nodes)
            for target, rows in derived(self.derive, ext.receipts, events):
                if isinstance(target, Update):
                    self._update_rows(target, rows)
                elif isinstance(target, InsertOnce):
                    self._insert_rows(target.table, rows, once=True)
                else:
                    self._insert_rows(target, rows)
            db.execute(
                _MOVE_HEAD,
                (ext.frontier.size, ext.root, b"".join(ext.frontier.hashes()), stamp, HEAD_ID),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return Appended(
            size,
            [r.leaf_hash for r in ext.receipts],
            ext.frontier.size,
            ext.root,
            checkpoint_due(self.checkpoint_every, ext.frontier.size, signed_size),
        )

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        """Store a signed checkpoint (a no-op if one of that size exists)."""
        begin_immediate(self.db, self.patience)
        try:
            self.db.execute(_CHECKPOINT, (size, root, note, self._bind_time(datetime.now(UTC))))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _insert_rows(self, table: Any, rows: list[dict[str, Any]], once: bool = False) -> None:
        """Plain-driver executemany of dict rows, values bound as SQLAlchemy would; ``once``:
        a row whose primary key is there already is left out (:class:`InsertOnce`)."""
        columns = list(rows[0])
        binds = [self._binder(table, name) for name in columns]
        sql = driver_insert(self._dialect, table.name, columns)
        if once:
            sql = sql.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)
        self.db.executemany(
            sql,
            [
                tuple(bind(row[name]) for bind, name in zip(binds, columns, strict=True))
                for row in rows
            ],
        )

    def _update_rows(self, target: Update, rows: list[dict[str, Any]]) -> None:
        table = target.table
        for row in rows:
            values = [name for name in row if name not in target.key]
            # Table and column names come from the audit models, never from input.
            sql = (
                f"UPDATE {table.name} SET {', '.join(f'{n} = ?' for n in values)} "  # noqa: S608
                f"WHERE {' AND '.join(f'{k} = ?' for k in target.key)}"
            )
            names = [*values, *target.key]
            self.db.execute(sql, tuple(self._binder(table, n)(row[n]) for n in names))

    def _binder(self, table: Any, name: str) -> Any:
        key = (table.name, name)
        found = self._binders.get(key)
        if found is None:
            column_type = table.c[name].type
            found = column_type.dialect_impl(self._dialect).bind_processor(self._dialect) or (
                lambda value: value
            )
            self._binders[key] = found
        return found

    def close(self) -> None:
        self.db.close()


def begin_immediate(db: sqlite3.Connection, patience: float) -> None:
    """Take SQLite's write lock, retrying while another writer holds it.

    IMMEDIATE takes the lock before anything is read, so no other process can move what
    we read before we write.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def is_locked(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    return "locked" in str(exc) or "busy" in str(exc)
