"""Run a statistic on every source that holds its rows, and merge the partial aggregates.

One statement per source (see :mod:`connectors.statistics.plan`), all sources at once within
the request's deadline; a source that fails becomes a :class:`SourceFailure` and its part is
missing, as everywhere else. What comes back per cell is a row count, sums and a count of
distinct persons *at that source*.

Merging: counts and sums add up. Distinct persons do not: a person with rows at two sources
(a person who moved province; in-province care at a bureau and cross-province care at the
platform) is one person, and no source may hand the gateway its person pseudonyms to find
out. So a merged cell carries ``persons_low`` (the largest single source's count: there are
at least that many) and ``persons_high`` (the sum: at most that many). They are equal, and
exact, whenever one source holds all of a cell's rows, which is the case for every cell that
fixes the source partition (cross-province or not, and the insured province). Small-cell
suppression decides on ``persons_low``, so an overlap can only make it suppress more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import combinations
from typing import Any

from sqlalchemy import ColumnElement, false, or_

from connectors.fanout import Deadline, SourceFailure, fan_out
from connectors.registry import Source
from connectors.statistics.catalogue import Context, Located, Statistic
from connectors.statistics.plan import COUNT, PERSONS, Bounds, statement

Level = tuple[str, ...]
Key = tuple[str, ...]


@dataclass(frozen=True)
class Scope:
    """Which rows the caller's grade opens: all, a region (a province or city prefix of the
    insured or the treatment place), or the national platform's rows only."""

    prefix: str | None = None
    platform_only: bool = False


@dataclass(frozen=True)
class Query:
    statistic: Statistic
    dims: tuple[str, ...]
    levels: tuple[Level, ...]
    equals: Mapping[str, str] = field(default_factory=dict)
    months: tuple[str, str] | None = None  # first and last month, YYYY-MM, inclusive
    scope: Scope = Scope()
    bounds: Bounds | None = None


@dataclass
class Cell:
    count: int | float = 0  # floats: the bounded weights of a DP statement
    persons_low: int | float = 0
    persons_high: int | float = 0
    sums: dict[str, int | float] = field(default_factory=dict)
    sources: int = 0

    @property
    def persons_exact(self) -> bool:
        return self.persons_low == self.persons_high


@dataclass
class Cube:
    dims: tuple[str, ...]
    levels: tuple[Level, ...]
    cells: dict[Level, dict[Key, Cell]]
    answered: list[str]
    failures: list[SourceFailure]
    asked: list[str]

    def finest(self) -> dict[Key, Cell]:
        return self.cells.get(self.dims, {})


def all_levels(dims: Sequence[str]) -> tuple[Level, ...]:
    """Every subset of ``dims`` (in the order of ``dims``), the finest first."""
    dims = tuple(dims)
    return tuple(level for size in range(len(dims), -1, -1) for level in combinations(dims, size))


def _month_start(value: str) -> datetime:
    year, month = (int(part) for part in value.split("-"))
    return datetime(year, month, 1)


def _month_after(value: str) -> datetime:
    year, month = (int(part) for part in value.split("-"))
    return datetime(year + month // 12, month % 12 + 1, 1)


def _in_scope(source: Source, located: Located, scope: Scope) -> list[ColumnElement[bool]] | None:
    """Clauses keeping a source's rows to the scope; None when the source is out of it."""
    if scope.platform_only and source.spec.kind != "platform":
        return None
    if not scope.prefix:
        return []
    columns = [c for c in (located.insured, located.treatment) if c is not None]
    if columns:
        return [or_(*(c.startswith(scope.prefix) for c in columns))]
    # A source without region columns (a hospital, a pharmacy) is in its own region.
    where = (source.spec.institution or "")[1:7] or (source.spec.region or "")
    return [] if where.startswith(scope.prefix) else [false()]


def _where(query: Query, located: Located) -> list[ColumnElement[bool]]:
    plan = located.plan
    clauses: list[ColumnElement[bool]] = [plan.dims[d] == v for d, v in query.equals.items()]
    if query.months is not None and located.time is not None:
        first, last = query.months
        start, end = _month_start(first), _month_after(last)
        if located.time.type.python_type is date:  # a Date column, not a DateTime
            clauses += [located.time >= start.date(), located.time < end.date()]
        else:
            clauses += [located.time >= start, located.time < end]
    return clauses


async def run(query: Query, sources: Sequence[Source], ctx: Context, deadline: Deadline) -> Cube:
    stat = query.statistic
    sums = tuple(stat.sums)
    planned: dict[str, Any] = {}
    for source in sources:
        if source.spec.kind not in stat.kinds:
            continue
        located = stat.plan(source, ctx)
        if located is None:
            continue
        scoped = _in_scope(source, located, query.scope)
        if scoped is None:
            continue
        planned[source.name] = (
            source,
            statement(
                located.plan,
                query.dims,
                query.levels,
                sums,
                where=[*_where(query, located), *scoped],
                bounds=query.bounds,
            ),
        )

    async def one(source: Source) -> list[Any]:
        stmt = planned[source.name][1]
        async with source.engine.connect() as conn:
            return list((await conn.execute(stmt)).all())

    results, failures = await fan_out([s for s, _ in planned.values()], one, deadline)
    return merge(query, results, failures, list(planned))


def merge(
    query: Query,
    results: Mapping[str, list[Any]],
    failures: list[SourceFailure],
    asked: list[str],
) -> Cube:
    sums = tuple(query.statistic.sums)
    cells: dict[Level, dict[Key, Cell]] = {level: {} for level in query.levels}
    for rows in results.values():
        for row in rows:
            values = row._mapping
            count = _number(values[f"m_{COUNT}"])
            if not count:
                continue  # a grand total over no rows
            level = query.levels[int(values["lvl"])]
            key = tuple(str(values[f"d_{query.dims.index(d)}"]) for d in level)
            cell = cells[level].setdefault(key, Cell(sums={s: 0 for s in sums}))
            persons = _number(values[f"m_{PERSONS}"])
            cell.count += count
            cell.persons_low = max(cell.persons_low, persons)
            cell.persons_high += persons
            cell.sources += 1
            for s in sums:
                cell.sums[s] += _number(values[f"m_{s}"])
    return Cube(query.dims, query.levels, cells, sorted(results), failures, asked)


def _number(value: Any) -> int | float:
    """Counts and sums are integers (PostgreSQL gives a SUM as a Decimal); the weights of a
    bounded statement are floats."""
    if value is None:
        return 0
    return value if isinstance(value, float) else int(value)
