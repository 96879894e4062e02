"""A statistic pushed down to one source: one SQL statement that returns partial aggregates.

The statement is built with SQLAlchemy Core only (the same object runs on SQLite and
PostgreSQL) and has these layers:

``rows``    the source's own rows, projected to the dimension values (strings), the person
            pseudonym and the summed columns;
``cells``   one row per (finest cell, person): how many rows and what sums that person has in
            the cell (a CTE, read once per level);
``levels``  one ``GROUP BY`` per requested level (a subset of the dimensions), ``UNION ALL``:
            per cell the row count, the sums and ``COUNT(DISTINCT person)``.

Under differential privacy (``bounds``) there is one level, the cells released, and each
person's *total* contribution to them is bounded rather than each row's: a window over the
person's cells gives their total rows, cells and sums, and a person over a bound has every
cell of theirs scaled by ``bound / total`` (so at most ``bound`` in all, spread as their rows
are). A person under the bounds counts in full: nothing is cut from the typical person, only
the heaviest are scaled down. The released figures are then sums of these weights (floats).

Only the last layer's columns leave the source: ``lvl`` (the level's index), ``d_<i>`` (the
dimension values, NULL where the level sums over the dimension) and ``m_<name>`` (counts and
sums). No person pseudonym, identifier or encrypted column is ever a result column; the
person appears only inside ``COUNT(DISTINCT ...)``, a CTE's ``GROUP BY`` and the window's
``PARTITION BY``.

Distinct persons are exact *within* a source. Across sources the gateway cannot union person
sets without moving them, so it keeps a lower bound (the largest source's count) and an upper
bound (their sum); see :mod:`connectors.statistics.run`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Float,
    FromClause,
    Integer,
    Select,
    String,
    case,
    cast,
    distinct,
    func,
    literal,
    null,
    select,
    union_all,
)

COUNT = "count"
PERSONS = "persons"


@dataclass(frozen=True)
class SourcePlan:
    """How one kind of source answers one statistic."""

    base: FromClause  # a table, or a join of the source's tables
    person: ColumnElement  # the federation pseudonym column: never a result column
    dims: Mapping[str, ColumnElement]  # dimension -> string-valued expression
    sums: Mapping[str, ColumnElement] = field(default_factory=dict)  # measure -> integer
    where: tuple[ColumnElement[bool], ...] = ()


# A bounded person's weights add up to the bound times this, never above it: the float
# products and sums of the scaling are off by a few ulps, far less than this margin.
SLACK = 1 - 1e-9


@dataclass(frozen=True)
class Bounds:
    """What one person may contribute at one source to a differentially private release, in
    all its cells together (the L1 bound of their contribution vector)."""

    rows: int  # rows counted
    cells: int  # cells the person is counted in as a distinct person
    totals: Mapping[str, int]  # sum measure -> the person's total (each row is at least 0)


def result_columns(dims: Sequence[str], sums: Sequence[str]) -> list[str]:
    """The names of the columns a statistics statement returns, in order."""
    return [
        "lvl",
        *(f"d_{i}" for i in range(len(dims))),
        f"m_{COUNT}",
        f"m_{PERSONS}",
        *(f"m_{s}" for s in sums),
    ]


def _non_negative(expr: ColumnElement) -> ColumnElement:
    # CASE, not GREATEST (PostgreSQL) or max (SQLite): the same SQL on both.
    return case((expr < 0, 0), else_=expr)


def _weight(total: ColumnElement, bound: int) -> ColumnElement:
    """1 for a person within ``bound``, else ``bound / total``: their cells scaled so that
    they add up to (just under) the bound."""
    share = literal(bound * SLACK, Float) / cast(total, Float)
    return case((total > bound, share), else_=literal(1.0, Float))


def statement(
    plan: SourcePlan,
    dims: Sequence[str],
    levels: Sequence[Sequence[str]],
    sums: Sequence[str],
    where: Sequence[ColumnElement[bool]] = (),
    bounds: Bounds | None = None,
) -> Select | CompoundSelect:
    """One statement answering every level of ``levels`` (each a subset of ``dims``); with
    ``bounds``, the one level ``dims`` with each person's contribution bounded."""
    columns = [plan.dims[d].label(f"d_{i}") for i, d in enumerate(dims)]
    values = []
    for name in sums:
        expr = plan.sums[name] if bounds is None else _non_negative(plan.sums[name])
        values.append(expr.label(f"s_{name}"))
    rows = (
        select(*columns, plan.person.label("p"), *values)
        .select_from(plan.base)
        .where(*plan.where, *where)
        .subquery("rows")
    )
    if bounds is not None:
        if [tuple(level) for level in levels] != [tuple(dims)]:
            raise ValueError("a bounded statement answers the finest level only")
        return _bounded(rows, len(dims), sums, bounds)
    dim_cols = [rows.c[f"d_{i}"] for i in range(len(dims))]
    if len(levels) == 1:
        # One level: group the rows directly (the per-person cells would be one more sort).
        level = levels[0]
        shown = [
            rows.c[f"d_{i}"] if d in level else cast(null(), String).label(f"d_{i}")
            for i, d in enumerate(dims)
        ]
        single = select(
            literal(0, Integer).label("lvl"),
            *shown,
            func.count().label(f"m_{COUNT}"),
            func.count(distinct(rows.c.p)).label(f"m_{PERSONS}"),
            *(func.coalesce(func.sum(rows.c[f"s_{s}"]), 0).label(f"m_{s}") for s in sums),
        )
        grouped = [rows.c[f"d_{dims.index(d)}"] for d in level]
        return single.group_by(*grouped) if grouped else single
    cells = (
        select(
            *dim_cols,
            rows.c.p,
            func.count().label("n"),
            *(func.sum(rows.c[f"s_{s}"]).label(f"s_{s}") for s in sums),
        )
        .group_by(*dim_cols, rows.c.p)
        .cte("cells")
        .prefix_with("MATERIALIZED")  # read once per level: compute it once (SQLite, PG 12+)
    )
    parts = []
    for index, level in enumerate(levels):
        grouped = [cells.c[f"d_{dims.index(d)}"] for d in level]
        shown = [
            cells.c[f"d_{i}"] if d in level else cast(null(), String).label(f"d_{i}")
            for i, d in enumerate(dims)
        ]
        part = select(
            literal(index, Integer).label("lvl"),
            *shown,
            func.sum(cells.c.n).label(f"m_{COUNT}"),
            func.count(distinct(cells.c.p)).label(f"m_{PERSONS}"),
            *(func.coalesce(func.sum(cells.c[f"s_{s}"]), 0).label(f"m_{s}") for s in sums),
        ).select_from(cells)
        if grouped:
            part = part.group_by(*grouped)
        parts.append(part)
    return parts[0] if len(parts) == 1 else union_all(*parts)


def _bounded(rows: FromClause, ndims: int, sums: Sequence[str], bounds: Bounds) -> Select:
    """Per (cell, person), then each person's totals over their cells (a window), then the
    cells as sums of the bounded weights."""
    dim_cols = [rows.c[f"d_{i}"] for i in range(ndims)]
    cells = (
        select(
            *dim_cols,
            rows.c.p,
            func.count().label("n"),
            *(func.sum(rows.c[f"s_{s}"]).label(f"s_{s}") for s in sums),
        )
        .group_by(rows.c.p, *dim_cols)
        .subquery("cells")
    )
    person = {"partition_by": cells.c.p}
    weighted = select(
        *(cells.c[f"d_{i}"] for i in range(ndims)),
        (cells.c.n * _weight(func.sum(cells.c.n).over(**person), bounds.rows)).label("w_n"),
        _weight(func.count().over(**person), bounds.cells).label("w_p"),
        *(
            (
                cells.c[f"s_{s}"]
                * _weight(func.sum(cells.c[f"s_{s}"]).over(**person), bounds.totals[s])
            ).label(f"w_{s}")
            for s in sums
        ),
    ).subquery("weighted")
    shown = [weighted.c[f"d_{i}"] for i in range(ndims)]
    out = select(
        literal(0, Integer).label("lvl"),
        *shown,
        func.sum(weighted.c.w_n).label(f"m_{COUNT}"),
        func.sum(weighted.c.w_p).label(f"m_{PERSONS}"),
        *(func.coalesce(func.sum(weighted.c[f"w_{s}"]), 0).label(f"m_{s}") for s in sums),
    )
    return out.group_by(*shown) if shown else out
