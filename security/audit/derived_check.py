"""``medfed audit verify`` for what the auditors read: every derived table recomputed from
the verified leaves and compared, row by row.

The auditors' API answers from ``audit_index`` (which events match), ``audit_writes`` (which
intents are pending) and ``audit_alerts`` (the alerts and their states). Each row of them is
derived from exactly one leaf by the log's own derive hook (:mod:`security.audit.derive`),
and the first column of its key is that leaf's index; so the check streams with the leaves,
chunk by chunk, in bounded memory: recompute the chunk's rows, read the stored rows whose
leaf lies in the chunk, compare. A row the log does not derive, one it derives that is
missing, and a column that differs are each reported by table, key and column (never by
value: a report is printed and passed around).

An alert's state is set by later events than its opening. Its row says which event set the
current state (``state_idx``); the check holds that event to the row's state columns when the
stream reaches it, and at every change event of the alert holds the row's ``state_idx`` to be
no older. Together: the stored state is the one the alert's last change set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from security.audit import alert_state, derive
from security.audit.leaves import Update

Key = tuple[Any, ...]


@dataclass(frozen=True)
class WrongRow:
    table: str
    key: str  # "idx=12, person=Zx…"
    column: str | None  # None: the whole row is missing or not derived from the log
    problem: str
    index: int  # the leaf the row belongs to, for ordering

    def describe(self) -> str:
        where = f"{self.table} row ({self.key})"
        return (
            f"{where}: column {self.column} {self.problem}"
            if self.column
            else f"{where} {self.problem}"
        )


@dataclass
class TableCheck:
    name: str
    rows: int = 0  # stored rows compared


@dataclass
class DerivedReport:
    tables: list[TableCheck] = field(default_factory=list)
    wrong: list[WrongRow] = field(default_factory=list)
    wrong_count: int = 0
    checked: bool = True  # False when the log itself was damaged and the check stopped

    def first(self) -> WrongRow | None:
        return min(self.wrong, key=lambda w: w.index) if self.wrong else None

    def describe_tables(self) -> str:
        return ", ".join(f"{t.name} ({t.rows} rows)" for t in self.tables)


def _plain(value: Any) -> Any:
    """One representation per value whatever the database gave back."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


@dataclass
class _Table:
    table: Any
    key: tuple[str, ...]
    ignored: tuple[str, ...]
    state: tuple[str, ...] = ()  # columns set by later events (compared by state_idx)

    def __post_init__(self) -> None:
        skip = {*self.ignored, *self.state}
        self.columns = [c.name for c in self.table.columns if c.name not in skip]
        # Only times and bytes differ in representation between drivers: convert just those.
        self.convert = [
            c.name
            for c in self.table.columns
            if c.name not in skip and c.type.python_type in (datetime, bytes)
        ]

    @property
    def leaf(self) -> str:
        return self.key[0]

    def compared(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out = {c: row.get(c) for c in self.columns}
        for c in self.convert:
            out[c] = _plain(out[c])
        return out


class DerivedChecker:
    def __init__(
        self,
        derive_rows: Callable[[int, Mapping[str, Any]], Iterable[tuple[Any, dict[str, Any]]]]
        | None = None,
        tables: Sequence[tuple[Any, tuple[str, ...], tuple[str, ...]]] = derive.TABLES,
        max_listed: int = 20,
    ) -> None:
        self.derive = derive_rows or derive.rows
        self.tables = [
            _Table(t, key, ignored, alert_state.STATE_COLUMNS if t is alert_state.ALERTS else ())
            for t, key, ignored in tables
        ]
        self.report = DerivedReport(tables=[TableCheck(t.table.name) for t in self.tables])
        self.max_listed = max_listed
        self._low: int | None = None  # the leaf rows up to which are checked

    def _wrong(self, table: str, key: str, column: str | None, problem: str, index: int) -> None:
        report = self.report
        report.wrong_count += 1
        if len(report.wrong) < self.max_listed:
            report.wrong.append(WrongRow(table, key, column, problem, index))
        else:
            first = report.first()
            if first is not None and index < first.index:
                report.wrong[-1] = WrongRow(table, key, column, problem, index)

    @staticmethod
    def _key_text(t: _Table, key: Key) -> str:
        return ", ".join(f"{name}={value}" for name, value in zip(t.key, key, strict=True))

    async def chunk(
        self, conn: AsyncConnection, leaves: Sequence[tuple[int, bytes]], last: bool = False
    ) -> None:
        """Check the rows of ``leaves`` (verified, in index order, following the previous
        chunk's); ``last``: no leaf follows, so rows of later indexes are not the log's."""
        high = None if last or not leaves else leaves[-1][0]
        expected: dict[str, dict[Key, list[dict[str, Any]]]] = {
            t.table.name: {} for t in self.tables
        }
        changes: list[tuple[int, dict[str, Any]]] = []  # (leaf, alert change row)
        by_leaf: dict[int, dict[str, Any]] = {}  # alert opened or changed at a leaf
        names = {t.table.name: t for t in self.tables}
        for idx, entry in leaves:
            try:
                event = orjson.loads(entry)["event"]
                produced = list(self.derive(idx, event))
            except Exception as exc:
                self._wrong(
                    "audit_events",
                    f"idx={idx}",
                    None,
                    f"cannot be derived ({type(exc).__name__})",
                    idx,
                )
                continue
            for target, row in produced:
                if isinstance(target, Update):
                    changes.append((idx, row))
                    by_leaf[idx] = {"change": row}
                    continue
                t = names[target.name]
                key = tuple(row.get(k) for k in t.key)
                expected[t.table.name].setdefault(key, []).append(t.compared(row))
                if t.state:
                    by_leaf[idx] = {"open": row}
        for t, check in zip(self.tables, self.report.tables, strict=True):
            stored = await self._stored(conn, t, t.leaf, high)
            check.rows += sum(len(rows) for rows in stored.values())
            self._compare(t, expected[t.table.name], stored)
            if t.state:
                await self._check_states(conn, t, high, by_leaf, changes)
        self._low = high

    async def finish(self, conn: AsyncConnection) -> None:
        """Rows beyond the last leaf (an empty log has none of its own)."""
        await self.chunk(conn, [], last=True)

    async def _stored(
        self, conn: AsyncConnection, t: _Table, column: str, high: int | None
    ) -> dict[Key, list[dict[str, Any]]]:
        query = select(t.table)
        if self._low is not None:
            query = query.where(t.table.c[column] > self._low)
        if high is not None:
            query = query.where(t.table.c[column] <= high)
        out: dict[Key, list[dict[str, Any]]] = {}
        for row in (await conn.execute(query)).mappings():
            out.setdefault(tuple(row[k] for k in t.key), []).append(t.compared(row))
        return out

    def _compare(
        self,
        t: _Table,
        expected: Mapping[Key, list[dict[str, Any]]],
        stored: Mapping[Key, list[dict[str, Any]]],
    ) -> None:
        name = t.table.name

        def order(key: Key) -> tuple[Any, ...]:
            return tuple(
                (v is not None, str(v)) if not isinstance(v, int) else (True, v) for v in key
            )

        for key in sorted(set(expected) | set(stored), key=order):
            want, have = expected.get(key, []), stored.get(key, [])
            leaf = key[0] if isinstance(key[0], int) else -1
            text = self._key_text(t, key)
            if len(have) < len(want):
                self._wrong(name, text, None, "is missing (the log derives it)", leaf)
            elif len(have) > len(want):
                self._wrong(name, text, None, "is not derived from the log (inserted)", leaf)
            else:
                remaining = list(have)
                for row in want:
                    if row in remaining:
                        remaining.remove(row)
                        continue
                    other = remaining.pop(0)
                    column = next(c for c in row if row[c] != other.get(c))
                    self._wrong(name, text, column, "differs from the log", leaf)

    async def _check_states(
        self,
        conn: AsyncConnection,
        t: _Table,
        high: int | None,
        by_leaf: Mapping[int, Mapping[str, Any]],
        changes: Sequence[tuple[int, Mapping[str, Any]]],
    ) -> None:
        table, name = t.table, t.table.name
        # (a) Every row whose state this chunk's events set: held to that event.
        query = select(table.c.id, *(table.c[c] for c in t.state))
        if self._low is not None:
            query = query.where(table.c.state_idx > self._low)
        if high is not None:
            query = query.where(table.c.state_idx <= high)
        for row in (await conn.execute(query)).mappings():
            setter = by_leaf.get(row["state_idx"], {})
            source = setter.get("open") if setter.get("open", {}).get("id") == row["id"] else None
            if source is None and setter.get("change", {}).get("id") == row["id"]:
                source = setter["change"]
            key = f"id={row['id']}"
            if source is None:
                self._wrong(
                    name, key, "state_idx", "names an event that does not set its state", row["id"]
                )
                continue
            for column in t.state:
                if _plain(row[column]) != _plain(source.get(column)):
                    self._wrong(name, key, column, "differs from the log", row["id"])
                    break
        # (b) Every change in this chunk: the row's state is no older than it.
        ids = sorted({int(change["id"]) for _, change in changes})
        if not ids:
            return
        current = dict(
            (
                await conn.execute(select(table.c.id, table.c.state_idx).where(table.c.id.in_(ids)))
            ).all()
        )
        for leaf, change in changes:
            have = current.get(int(change["id"]))
            if have is not None and have < leaf:
                self._wrong(
                    name,
                    f"id={change['id']}",
                    "state",
                    f"is older than the log (event {leaf} changed it)",
                    int(change["id"]),
                )
