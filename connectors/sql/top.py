"""SQL text of a keyset page per key: each key's newest ``limit`` rows after a cursor.

One statement whatever the number of keys: for one key ``ORDER BY … DESC LIMIT``; for
several, ``ROW_NUMBER() OVER (PARTITION BY key …)`` keeps each key's first ``limit`` (SQLite
3.25+ and PostgreSQL). The cursor is a row-value comparison, ``(a, b) < (?, ?)``, so the
page starts strictly after the last row seen, the way ``schema.pagination`` cuts it.
Identifiers come from the table metadata, values only as parameters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table


def top_sql(
    table: Table,
    column: str,
    order: Sequence[str],
    *,
    single: bool,
    keys: str,
    after: Sequence[str] | None,
    limit: str,
    quote: Callable[[str], str],
    table_name: str,
) -> str:
    """``keys`` is the key test after the column (``IN (?, ?)``, ``= ANY($1)``); ``after``
    the cursor's placeholders (one per ``order`` column), or None; ``limit`` the limit's;
    ``single``: the keys are one key, so no window is needed."""
    names = ", ".join(quote(c.name) for c in table.columns)
    key = quote(table.c[column].name)  # KeyError for a column the table lacks
    ordered = [quote(table.c[c].name) for c in order]
    condition = f"{key} {keys}"
    if after is not None:
        condition += f" AND ({', '.join(ordered)}) < ({', '.join(after)})"
    by = ", ".join(f"{c} DESC" for c in ordered)
    if single:
        return (
            f"SELECT {names} FROM {table_name} WHERE {condition} "  # noqa: S608
            f"ORDER BY {by} LIMIT {limit}"
        )
    return (
        f"SELECT {names} FROM (SELECT {names}, ROW_NUMBER() OVER "  # noqa: S608
        f"(PARTITION BY {key} ORDER BY {by}) AS _n FROM {table_name} "
        f"WHERE {condition}) AS _page WHERE _n <= {limit}"
    )


def top_rows(
    rows: Sequence[dict[str, Any]],
    column: str,
    order: Sequence[str],
    after: Sequence[Any] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The same page cut from rows already loaded (a source without a reader, a peer)."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row[column]].append(row)
    out: list[dict[str, Any]] = []
    cursor = None if after is None else tuple(after)
    for group in groups.values():
        keyed = sorted(((tuple(r[c] for c in order), r) for r in group), key=lambda p: p[0])
        keyed.reverse()
        if cursor is not None:
            keyed = [p for p in keyed if p[0] < cursor]
        out += [r for _, r in keyed[:limit]]
    return out
