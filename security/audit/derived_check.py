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

An alert's or a warning's state is set by later events than its opening. Its row says which
event set the current state (``state_idx``); the check holds that event to the row's state
columns when the stream reaches it, and at every change event of the row holds its
``state_idx`` to be no older. Together: the stored state is the one the last change set. A
supervision warning (a rule hit) is opened by the event that carries its facts, named by
its ``opened_idx``; several events may carry one hit (two scans at once) and the first opens
it, so each stored warning is held to the event it names (its facts, and that no earlier
event opened it), and each hit an event carries must be stored as opened by that event or an
earlier one. One never changed (``state_idx`` empty) must still be as it opened: OPEN, with
no owner and no note.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from security import warnings
from security.audit import alert_state, derive
from security.audit.leaves import InsertOnce, Update

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
        # The tables whose state columns change events set, with the column naming a row.
        self.stateful = [
            (table, column, alert_state.STATE_COLUMNS) for table, column in alert_state.STATEFUL
        ]
        self.report = DerivedReport(tables=[TableCheck(t.table.name) for t in self.tables])
        self._openings = TableCheck(alert_state.WARNINGS.name)
        self.report.tables.append(self._openings)
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
        # (leaf, change row) per table; what opened or changed a row at a leaf, per table
        changes: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        by_leaf: dict[str, dict[int, dict[str, Any]]] = {}
        openings: list[tuple[int, dict[str, Any]]] = []  # (leaf, rule hit it opens)
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
                if isinstance(target, InsertOnce):
                    openings.append((idx, row))
                    continue
                if isinstance(target, Update):
                    changes.setdefault(target.table.name, []).append((idx, row))
                    by_leaf.setdefault(target.table.name, {})[idx] = {"change": row}
                    continue
                t = names[target.name]
                key = tuple(row.get(k) for k in t.key)
                expected[t.table.name].setdefault(key, []).append(t.compared(row))
                if t.state:
                    by_leaf.setdefault(t.table.name, {})[idx] = {"open": row}
        for t, check in zip(self.tables, self.report.tables[: len(self.tables)], strict=True):
            stored = await self._stored(conn, t, t.leaf, high)
            check.rows += sum(len(rows) for rows in stored.values())
            self._compare(t, expected[t.table.name], stored)
        for table, column, state in self.stateful:
            name = table.name
            await self._check_states(
                conn, table, column, state, high, by_leaf.get(name, {}), changes.get(name, [])
            )
        await self._check_openings(conn, high, openings)
        self._low = high

    async def _check_openings(
        self, conn: AsyncConnection, high: int | None, openings: Sequence[tuple[int, dict]]
    ) -> None:
        """The rule hits opened by this chunk's events against the warnings whose
        ``opened_idx`` lies in it (see the module's note)."""
        table = alert_state.WARNINGS
        name, opened = table.name, table.c.opened_idx
        query = select(table).where(opened.is_not(None))
        if self._low is not None:
            query = query.where(opened > self._low)
        if high is not None:
            query = query.where(opened <= high)
        stored = {row["warning_id"]: dict(row) for row in (await conn.execute(query)).mappings()}
        self._openings.rows += len(stored)
        columns = [*warnings.FIXED, "settled_at", "found_at", "updated_at"]
        held: set[str] = set()  # stored warnings an event of this chunk opens
        elsewhere: list[tuple[int, str]] = []  # hits whose warning names no event up to theirs
        for idx, row in openings:
            wid = row["warning_id"]
            have = stored.get(wid)
            if have is not None and have["opened_idx"] == idx:
                held.add(wid)
                wrong = next((c for c in columns if _plain(have[c]) != _plain(row[c])), None)
                if wrong is not None:
                    self._wrong(name, f"warning_id={wid}", wrong, "differs from the log", idx)
            elif have is None or have["opened_idx"] > idx:
                elsewhere.append((idx, wid))
            # else: an earlier event of this chunk opened it, and is held to it above
        ids = sorted({wid for _, wid in elsewhere if wid not in stored})
        earlier: dict[str, int | None] = {}
        for i in range(0, len(ids), 500):
            stmt = select(table.c.warning_id, opened).where(
                table.c.warning_id.in_(ids[i : i + 500])
            )
            earlier.update(dict((await conn.execute(stmt)).all()))
        for idx, wid in elsewhere:
            at = stored[wid]["opened_idx"] if wid in stored else earlier.get(wid)
            key = f"warning_id={wid}"
            if wid not in stored and wid not in earlier:
                self._wrong(name, key, None, f"is missing (event {idx} opens it)", idx)
            elif at is None or at > idx:
                held.add(wid)  # reported here, not again as inserted
                self._wrong(name, key, "opened_idx", f"differs from the log (event {idx})", idx)
        for wid, row in stored.items():
            if wid not in held:
                self._wrong(
                    name,
                    f"warning_id={wid}",
                    None,
                    "is not opened by the log (inserted)",
                    row["opened_idx"],
                )

    async def finish(self, conn: AsyncConnection) -> None:
        """Rows beyond the last leaf (an empty log has none of its own), the warnings no event
        opened, and the warnings no event changed: they must be as their event opened them."""
        await self.chunk(conn, [], last=True)
        table = alert_state.WARNINGS
        orphans = select(table.c.warning_id).where(table.c.opened_idx.is_(None))
        for (wid,) in (await conn.execute(orphans.limit(self.max_listed + 1))).all():
            self._wrong(
                table.name, f"warning_id={wid}", None, "was opened with no event in the log", -1
            )
        unchanged = select(table.c.warning_id).where(
            table.c.state_idx.is_(None),
            (table.c.state != alert_state.OPEN)
            | table.c.owner.is_not(None)
            | table.c.note.is_not(None)
            | table.c.changed_by.is_not(None),
        )
        for (wid,) in (await conn.execute(unchanged.limit(self.max_listed + 1))).all():
            self._wrong(
                table.name, f"warning_id={wid}", "state", "was changed with no event in the log", -1
            )

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
        table: Any,
        id_column: str,
        state: Sequence[str],
        high: int | None,
        by_leaf: Mapping[int, Mapping[str, Any]],
        changes: Sequence[tuple[int, Mapping[str, Any]]],
    ) -> None:
        name, ident = table.name, table.c[id_column]
        # (a) Every row whose state this chunk's events set: held to that event.
        query = select(ident, *(table.c[c] for c in state))
        if self._low is not None:
            query = query.where(table.c.state_idx > self._low)
        if high is not None:
            query = query.where(table.c.state_idx <= high)
        for row in (await conn.execute(query)).mappings():
            rid = row[id_column]
            setter = by_leaf.get(row["state_idx"], {})
            source = setter.get("open") if setter.get("open", {}).get(id_column) == rid else None
            if source is None and setter.get("change", {}).get(id_column) == rid:
                source = setter["change"]
            key = f"{id_column}={rid}"
            index = rid if isinstance(rid, int) else row["state_idx"]
            if source is None:
                self._wrong(
                    name, key, "state_idx", "names an event that does not set its state", index
                )
                continue
            for column in state:
                if _plain(row[column]) != _plain(source.get(column)):
                    self._wrong(name, key, column, "differs from the log", index)
                    break
        # (b) Every change in this chunk: the row's state is no older than it.
        ids = sorted({change[id_column] for _, change in changes})
        if not ids:
            return
        current = dict(
            (await conn.execute(select(ident, table.c.state_idx).where(ident.in_(ids)))).all()
        )
        for leaf, change in changes:
            have = current.get(change[id_column])
            if have is None and table is alert_state.WARNINGS:
                # (an alert's row missing is reported with the rows its leaf derives)
                self._wrong(name, f"{id_column}={change[id_column]}", None, "is missing", leaf)
            elif have is not None and have < leaf:
                self._wrong(
                    name,
                    f"{id_column}={change[id_column]}",
                    "state",
                    f"is older than the log (event {leaf} changed it)",
                    leaf,
                )
