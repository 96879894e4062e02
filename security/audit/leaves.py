"""What one append adds to the tree, independent of where it is written: the leaf entries
(event, index, time), their hashes, the subtrees they complete, and the new root.

Both writers use it: the engine path in :mod:`security.audit.log` (PostgreSQL) and the
SQLite writer process (:mod:`security.audit.sqlite_append`), so a leaf is built one way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.engine import Dialect

from security.audit import merkle

# (index, event) -> rows of derived tables as (table, row) pairs: a row to insert into the
# table; with an :class:`Update` in place of the table, new values for a row it keys; with
# an :class:`InsertOnce`, a row inserted unless its primary key is there already.
Derive = Callable[[int, Mapping[str, Any]], Iterable[tuple[Any, dict[str, Any]]]]


@dataclass(frozen=True)
class Update:
    """A derived change to rows already derived (an alert's state): the row's ``key`` columns
    pick the row, the others are its new values. Applied after the batch's inserts, in log
    order, so a row made and changed in one batch ends in its last state."""

    table: Any
    key: tuple[str, ...]


@dataclass(frozen=True)
class InsertOnce:
    """A derived row that more than one event may carry (the same rule hit found by two
    scans): inserted unless a row of its primary key exists, so the first event's row stands.
    Applied with the updates, in log order, so a row is made before a later event changes it."""

    table: Any


@dataclass(frozen=True)
class Receipt:
    index: int
    leaf_hash: bytes


@dataclass
class Extension:
    """What one batch adds: its rows, its receipts, and the tree it leaves behind."""

    frontier: merkle.Frontier
    events: list[tuple[int, bytes, bytes, Any]] = field(default_factory=list)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    root: bytes = merkle.EMPTY_ROOT


def canonical_event(event: Mapping[str, Any]) -> bytes:
    """Canonical JSON of an event: sorted keys, no whitespace, UTF-8."""
    if not isinstance(event, Mapping):
        raise TypeError("an audit event is a mapping of string keys")
    try:
        return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"audit event is not JSON-serialisable: {exc}") from None


def make_entry(event_json: bytes, index: int, logged_at: str) -> bytes:
    """The leaf data: the event wrapped with its index and time, in canonical JSON.

    Hashing the index into the leaf lets ``verify`` name a moved or inserted row exactly;
    hashing the time makes the log's own clock part of the evidence.
    """
    return b'{"event":%s,"index":%d,"logged_at":"%s"}' % (event_json, index, logged_at.encode())


def timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def split_hashes(blob: bytes) -> list[bytes]:
    return [blob[i : i + merkle.HASH_SIZE] for i in range(0, len(blob), merkle.HASH_SIZE)]


def extend(
    size: int, frontier_blob: bytes, event_jsons: Sequence[bytes], now: datetime, created: Any
) -> Extension:
    """The rows that append ``event_jsons`` to the tree whose head (``size``, right edge
    ``frontier_blob``) was just read under the log's lock; ``created`` is ``now`` bound
    for the driver."""
    frontier = merkle.Frontier(size, split_hashes(frontier_blob))
    stamp = timestamp(now)
    ext = Extension(frontier)

    def on_node(level: int, idx: int, h: bytes) -> None:
        ext.nodes.append((level, idx, h))

    for event_json in event_jsons:
        index = frontier.size
        entry = make_entry(event_json, index, stamp)
        leaf = merkle.leaf_hash(entry)
        frontier.append(leaf, on_node)
        ext.events.append((index, leaf, entry, created))
        ext.receipts.append(Receipt(index, leaf))
    ext.root = frontier.root()
    return ext


def derived(
    derive: Derive | None, receipts: Sequence[Receipt], events: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Derived rows by target, for the events just given their indexes: each table's inserts
    first, then every :class:`Update` and :class:`InsertOnce` in log order."""
    if derive is None or not events:
        return []
    inserts: dict[Any, list[dict[str, Any]]] = {}
    updates: list[tuple[Any, list[dict[str, Any]]]] = []
    for receipt, event in zip(receipts, events, strict=True):
        for target, row in derive(receipt.index, event):
            if isinstance(target, Update | InsertOnce):
                updates.append((target, [row]))
            else:
                inserts.setdefault(target, []).append(row)
    return [*inserts.items(), *updates]


def insert_once_statement(conn: Any, target: InsertOnce, row: Mapping[str, Any]) -> Any:
    """The INSERT … ON CONFLICT DO NOTHING of one :class:`InsertOnce` row."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(target.table).values(dict(row)).on_conflict_do_nothing()


def update_statement(target: Update, row: Mapping[str, Any]) -> Any:
    """The SQLAlchemy UPDATE of one :class:`Update` row."""
    table = target.table
    where = [table.c[k] == row[k] for k in target.key]
    return (
        table.update().where(*where).values({k: v for k, v in row.items() if k not in target.key})
    )


async def apply_derived(conn: Any, groups: Sequence[tuple[Any, list[dict[str, Any]]]]) -> None:
    """Write :func:`derived` rows through an async SQLAlchemy connection."""
    for target, rows in groups:
        if isinstance(target, Update):
            for row in rows:
                await conn.execute(update_statement(target, row))
        elif isinstance(target, InsertOnce):
            for row in rows:
                await conn.execute(insert_once_statement(conn, target, row))
        else:
            await conn.execute(target.insert(), rows)


def checkpoint_due(every: int, size: int, signed_size: int) -> bool:
    """Whether ``every`` or more events are beyond the last signed checkpoint."""
    return every > 0 and size - signed_size >= every


def driver_insert(dialect: Dialect, table: str, columns: Sequence[str]) -> str:
    """An INSERT in the driver's own parameter style, for plain executemany."""
    style = dialect.paramstyle
    if style == "qmark":
        marks = ["?"] * len(columns)
    elif style in ("numeric_dollar", "numeric"):
        sign = "$" if style == "numeric_dollar" else ":"
        marks = [f"{sign}{i}" for i in range(1, len(columns) + 1)]
    elif style in ("format", "pyformat"):
        marks = ["%s"] * len(columns)
    else:
        raise ValueError(f"unsupported driver parameter style {style}")
    # Table and column names are constants of the audit modules, never user input.
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(marks)})"  # noqa: S608
