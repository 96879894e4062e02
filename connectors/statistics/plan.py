"""A statistic pushed down to one source: one SQL statement that returns partial aggregates.

The statement is built with SQLAlchemy Core only (the same object runs on SQLite and
PostgreSQL) and has three layers:

``rows``    the source's own rows, projected to the dimension values (strings), the person
            pseudonym and the summed columns; for differential privacy each person's rows are
            also numbered (``ROW_NUMBER() OVER (PARTITION BY person)``) so only the first
            ``rows_per_person`` count, and every summed value is clamped to ``[0, clamp]``;
``cells``   one row per (finest cell, person): how many rows and what sums that person has in
            the cell (a CTE, read once per level);
``levels``  one ``GROUP BY`` per requested level (a subset of the dimensions), ``UNION ALL``:
            per cell the row count, the sums and ``COUNT(DISTINCT person)``.

Only the last layer's columns leave the source: ``lvl`` (the level's index), ``d_<i>`` (the
dimension values, NULL where the level sums over the dimension) and ``m_<name>`` (counts and
sums). No person pseudonym, identifier or encrypted column is ever a result column; the
person appears only inside ``COUNT(DISTINCT ...)`` and the window's ``PARTITION BY``.

Distinct persons are exact *within* a source. Across sources the gateway cannot union person
sets without moving them, so it keeps a lower bound (the largest source's count) and an upper
bound (their sum); see :mod:`connectors.statistics.merge`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
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
    order: ColumnElement  # a stable row key: which rows a bounded person keeps
    dims: Mapping[str, ColumnElement]  # dimension -> string-valued expression
    sums: Mapping[str, ColumnElement] = field(default_factory=dict)  # measure -> integer
    where: tuple[ColumnElement[bool], ...] = ()


@dataclass(frozen=True)
class Bounds:
    """Contribution bounds for differential privacy, applied at the source."""

    rows_per_person: int
    clamps: Mapping[str, int]  # sum measure -> upper bound (the lower bound is 0)


def result_columns(dims: Sequence[str], sums: Sequence[str]) -> list[str]:
    """The names of the columns a statistics statement returns, in order."""
    return [
        "lvl",
        *(f"d_{i}" for i in range(len(dims))),
        f"m_{COUNT}",
        f"m_{PERSONS}",
        *(f"m_{s}" for s in sums),
    ]


def _clamped(expr: ColumnElement, upper: int) -> ColumnElement:
    # CASE, not LEAST/GREATEST (PostgreSQL) or min/max (SQLite): the same SQL on both.
    return case((expr > upper, upper), (expr < 0, 0), else_=expr)


def statement(
    plan: SourcePlan,
    dims: Sequence[str],
    levels: Sequence[Sequence[str]],
    sums: Sequence[str],
    where: Sequence[ColumnElement[bool]] = (),
    bounds: Bounds | None = None,
) -> Select | CompoundSelect:
    """One statement answering every level of ``levels`` (each a subset of ``dims``)."""
    columns = [plan.dims[d].label(f"d_{i}") for i, d in enumerate(dims)]
    values = []
    for name in sums:
        expr = plan.sums[name]
        if bounds is not None:
            expr = _clamped(expr, bounds.clamps[name])
        values.append(expr.label(f"s_{name}"))
    projected = [*columns, plan.person.label("p"), *values]
    if bounds is not None:
        projected.append(
            func.row_number().over(partition_by=plan.person, order_by=plan.order).label("rn")
        )
    rows = select(*projected).select_from(plan.base).where(*plan.where, *where).subquery("rows")
    kept = rows
    if bounds is not None:
        kept = select(rows).where(rows.c.rn <= literal(bounds.rows_per_person, Integer)).subquery()
    dim_cols = [kept.c[f"d_{i}"] for i in range(len(dims))]
    if len(levels) == 1:
        # One level: group the rows directly (the per-person cells would be one more sort).
        level = levels[0]
        shown = [
            kept.c[f"d_{i}"] if d in level else cast(null(), String).label(f"d_{i}")
            for i, d in enumerate(dims)
        ]
        single = select(
            literal(0, Integer).label("lvl"),
            *shown,
            func.count().label(f"m_{COUNT}"),
            func.count(distinct(kept.c.p)).label(f"m_{PERSONS}"),
            *(func.coalesce(func.sum(kept.c[f"s_{s}"]), 0).label(f"m_{s}") for s in sums),
        )
        grouped = [kept.c[f"d_{dims.index(d)}"] for d in level]
        return single.group_by(*grouped) if grouped else single
    cells = (
        select(
            *dim_cols,
            kept.c.p,
            func.count().label("n"),
            *(func.sum(kept.c[f"s_{s}"]).label(f"s_{s}") for s in sums),
        )
        .group_by(*dim_cols, kept.c.p)
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
