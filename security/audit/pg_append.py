"""The audit log's append on PostgreSQL in one statement per batch, on a held connection.

Through the engine a batch cost eight round trips (the pool's ping, ``BEGIN``, the head's
``SELECT … FOR UPDATE``, the events, the nodes, the derived rows, the head's ``UPDATE``,
``COMMIT``), each with SQLAlchemy's per-statement work around it: about 2-3 ms of gateway CPU
per request on a 2-core machine, most of the gap between PostgreSQL and SQLite.

Here the batch is one statement, a compare-and-set of the head: the leaves, subtrees,
derived rows and a due checkpoint are built from the head this process last wrote (or read),
and the statement moves the head only if it is still that head, inserting everything else
in data-modifying CTEs that do nothing when it is not. One statement is one transaction,
committed (and flushed to the WAL, as every commit) before the reply: when it returns, the
batch is durable; when it fails, none of it is there. A head moved by another writer (a
second worker, the command line) comes back in the same reply and the batch is rebuilt on
it; after a few lost races, or for a batch with derived *updates* (an alert's state), the
caller uses the locking transaction instead. Writers of both kinds serialise on the head
row: the compare-and-set's ``UPDATE`` waits for a ``FOR UPDATE`` lock and re-checks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from security.audit.leaves import (
    Derive,
    InsertOnce,
    Receipt,
    Update,
    checkpoint_due,
    derived,
    extend,
)
from security.audit.models import HEAD_ID

log = logging.getLogger(__name__)

# Races lost in a row before the caller falls back to the locking transaction.
CAS_ATTEMPTS = 3
# How long a lost append's server process may take to end before the batch fails closed.
BACKEND_GONE_WAIT = 5.0
_BACKEND_SQL = "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)"


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection broke (so the statement's fate is unknown), as
    opposed to the statement failing on a live connection (so none of it is there)."""
    import asyncpg

    return isinstance(
        exc,
        OSError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.InternalClientError
        | asyncpg.exceptions.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError,
    )


@dataclass(frozen=True)
class Head:
    """The head as this process last saw it: size, root, right edge, last signed size."""

    size: int
    root: bytes
    frontier: bytes
    signed: int


@dataclass(frozen=True)
class Written:
    receipts: list[Receipt]
    signed: tuple[int, str] | None  # the checkpoint stored with the batch: (size, note)


# Table names and HEAD_ID are constants of the audit modules (no input reaches any SQL here).
_HEAD_SQL = (
    "SELECT size, root, frontier, (SELECT coalesce(max(size), 0) FROM audit_checkpoints)"  # noqa: S608
    f" FROM audit_head WHERE id = {HEAD_ID}"
)


def _pg_type(column: Any) -> str:
    return column.type.compile(dialect=postgresql.dialect())


class PgAppender:
    """Appends of one :class:`AuditLog` on a PostgreSQL ``engine``; one per process and loop.

    ``sign(size, root)`` returns the signed checkpoint note of a tree (the key stays with the
    log); ``append`` returns None when the batch must go through the locking transaction.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        derive: Derive | None,
        checkpoint_every: int,
        sign: Callable[[int, bytes], str],
    ) -> None:
        self.engine = engine
        self.derive = derive
        self.checkpoint_every = checkpoint_every
        self.sign = sign
        self.head: Head | None = None
        self._held: AsyncConnection | None = None
        self._driver: Any = None
        self._pid: int | None = None  # the server process of the held connection
        self._statements: dict[tuple, tuple[str, list[Callable[[list], list]]]] = {}
        self._prepared: dict[str, Any] = {}
        # For tests and benchmarks: statements sent, heads found moved by another writer,
        # batches handed back to the locking transaction.
        self.round_trips = self.races = self.handed_back = 0

    # --- the held connection -----------------------------------------------------------

    async def _connection(self) -> Any:
        """The asyncpg connection under one engine connection held for appends (so it has
        the engine's settings: search path, server settings)."""
        if self._driver is not None and not self._driver.is_closed():
            return self._driver
        await self.drop()
        held = await self.engine.connect()
        try:
            raw = await held.get_raw_connection()
            driver = raw.driver_connection
        except BaseException:
            await held.close()
            raise
        self._held, self._driver = held, driver
        self._pid = driver.get_server_pid()
        return driver

    async def drop(self) -> None:
        """Forget the connection (it failed or the log closes) and what was prepared on it."""
        held, self._held, self._driver = self._held, None, None
        self._prepared.clear()
        self.head = None
        if held is not None:
            try:
                await held.invalidate()
            except Exception:  # already broken: nothing to give back
                log.debug("audit append connection not invalidated cleanly", exc_info=True)

    async def close(self) -> None:
        held, self._held, self._driver = self._held, None, None
        self._prepared.clear()
        if held is not None:
            await held.close()

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        driver = await self._connection()
        statement = self._prepared.get(sql)
        if statement is None:
            statement = self._prepared[sql] = await driver.prepare(sql)
            self.round_trips += 1
        self.round_trips += 1
        return await statement.fetchrow(*args)

    # --- appending -----------------------------------------------------------------------

    async def append(
        self, event_jsons: Sequence[bytes], events: Sequence[Mapping[str, Any]]
    ) -> Written | None:
        """Append the batch in one statement, or None if the locking transaction must."""
        sent_at = datetime.now(UTC)
        try:
            return await self._append(event_jsons, events)
        except Exception as exc:
            if not _connection_lost(exc):
                raise
            # The server went away with the batch in flight (a restart, a failover, a
            # terminated backend): it committed or it did not. Once its backend is gone,
            # what committed is found in the log and the rest goes out again, so nothing is
            # lost or logged twice; while it may still commit, the batch fails closed.
            pid = self._pid
            log.warning("audit append connection lost (%s); recovering the batch", exc)
            await self.drop()
            return await self._recover(pid, event_jsons, events, sent_at)

    async def _recover(
        self,
        pid: int | None,
        event_jsons: Sequence[bytes],
        events: Sequence[Mapping[str, Any]],
        sent_at: datetime,
    ) -> Written:
        from security.audit.log import RECOVER_SLACK, committed_since  # log imports us

        driver = await self._connection()
        if pid is not None:
            for _ in range(int(BACKEND_GONE_WAIT / 0.05)):
                if not await driver.fetchval(_BACKEND_SQL, pid):
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"the lost append's backend {pid} is still running")
        found = await committed_since(self.engine, event_jsons, sent_at - RECOVER_SLACK)
        missing = [(j, e) for j, e in zip(event_jsons, events, strict=True) if j not in found]
        again: dict[bytes, Receipt] = {}
        signed = None
        if missing:
            done = await self._append([j for j, _ in missing], [e for _, e in missing])
            if done is None:
                raise RuntimeError("the lost batch needs the locking transaction")
            again = dict(zip([j for j, _ in missing], done.receipts, strict=True))
            signed = done.signed
        return Written([found.get(j) or again[j] for j in event_jsons], signed)

    async def _append(
        self, event_jsons: Sequence[bytes], events: Sequence[Mapping[str, Any]]
    ) -> Written | None:
        try:
            if self.head is None:
                row = await self._fetchrow(_HEAD_SQL)
                if row is None:
                    raise RuntimeError("the audit log has no head row; run `medfed db upgrade`")
                self.head = Head(*row)
            for _ in range(CAS_ATTEMPTS):
                done = await self._try(self.head, event_jsons, events)
                if isinstance(done, Written):
                    return done
                if done is None:
                    self.handed_back += 1
                    return None
                self.races += 1
                self.head = done  # another writer moved it: rebuild on its head
        except BaseException:
            # Whatever the statement did is all or nothing; the head we knew is suspect, so
            # it is read again for the next batch.
            self.head = None
            raise
        self.head = None
        self.handed_back += 1
        return None

    async def _try(
        self, head: Head, event_jsons: Sequence[bytes], events: Sequence[Mapping[str, Any]]
    ) -> Written | Head | None:
        now = datetime.now(UTC)
        ext = extend(head.size, head.frontier, event_jsons, now, now)
        groups = derived(self.derive, ext.receipts, events)
        if any(
            isinstance(target, Update | InsertOnce)
            or any(row.keys() != rows[0].keys() for row in rows)
            for target, rows in groups
        ):
            # an update, an insert-once, or rows unlike each other: the locking transaction
            return None
        size = ext.frontier.size
        frontier = b"".join(ext.frontier.hashes())
        note = (
            self.sign(size, ext.root)
            if checkpoint_due(self.checkpoint_every, size, head.signed)
            else None
        )
        shape = tuple((target, tuple(rows[0])) for target, rows in groups)
        sql, columns = self._statement(shape)
        args: list[Any] = [size, ext.root, frontier, now, head.size, head.root, note]
        args += [
            [index for index, _, _, _ in ext.events],
            [leaf for _, leaf, _, _ in ext.events],
            [entry for _, _, entry, _ in ext.events],
            [level for level, _, _ in ext.nodes],
            [index for _, index, _ in ext.nodes],
            [node for _, _, node in ext.nodes],
        ]
        for (_target, rows), convert in zip(groups, columns, strict=True):
            args += convert(rows)
        row = await self._fetchrow(sql, *args)
        if row is None:
            raise RuntimeError("the audit log has no head row; run `medfed db upgrade`")
        if not row[0]:
            return Head(row[1], row[2], row[3], row[4])
        self.head = Head(size, ext.root, frontier, size if note is not None else head.signed)
        return Written(ext.receipts, (size, note) if note is not None else None)

    def _statement(self, shape: tuple) -> tuple[str, list[Callable[[list], list]]]:
        """The compare-and-set statement for batches whose derived rows have ``shape`` (per
        table, its columns), and per table a converter of its rows to array parameters."""
        found = self._statements.get(shape)
        if found is not None:
            return found
        moved = "EXISTS (SELECT FROM head)"
        parts = [
            "head AS (UPDATE audit_head SET size = $1, root = $2, frontier = $3,"  # noqa: S608
            f" updated_at = $4 WHERE id = {HEAD_ID} AND size = $5 AND root = $6"
            " RETURNING 1)",
            "e AS (INSERT INTO audit_events (idx, leaf_hash, entry, created_at)"  # noqa: S608
            " SELECT i, h, x, $4 FROM unnest($8::bigint[], $9::bytea[], $10::bytea[])"
            f" AS t(i, h, x) WHERE {moved})",
            "n AS (INSERT INTO audit_nodes (level, idx, hash) SELECT * FROM"  # noqa: S608
            f" unnest($11::smallint[], $12::bigint[], $13::bytea[]) WHERE {moved})",
            "c AS (INSERT INTO audit_checkpoints (size, root, note, created_at)"
            f" SELECT $1, $2, $7, $4 WHERE $7::text IS NOT NULL AND {moved}"
            " ON CONFLICT (size) DO NOTHING)",
        ]
        converters: list[Callable[[list], list]] = []
        n = 13
        dialect = postgresql.asyncpg.dialect()
        for i, (table, names) in enumerate(shape):
            cols = [table.c[name] for name in names]
            marks = []
            for col in cols:
                n += 1
                marks.append(f"${n}::{_pg_type(col)}[]")
            binds = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in cols]
            quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
            parts.append(
                f"d{i} AS (INSERT INTO {table.name} ({quoted}) SELECT * FROM"  # noqa: S608
                f" unnest({', '.join(marks)}) WHERE {moved})"
            )
            converters.append(_arrays(names, binds))
        sql = (
            "WITH " + ", ".join(parts) + f" SELECT {moved}, h.size, h.root, h.frontier,"  # noqa: S608
            " (SELECT coalesce(max(size), 0) FROM audit_checkpoints)"
            f" FROM audit_head h WHERE h.id = {HEAD_ID}"
        )
        self._statements[shape] = (sql, converters)
        return sql, converters


def _arrays(names: Sequence[str], binds: Sequence[Any]) -> Callable[[list], list]:
    def convert(rows: list[dict[str, Any]]) -> list[list[Any]]:
        out = []
        for name, bind in zip(names, binds, strict=True):
            values = [row[name] for row in rows]
            if bind is not None:
                values = [None if v is None else bind(v) for v in values]
            out.append(values)
        return out

    return convert
