"""Which source tables hold original records that are anchored in the records log, and how a
record is read back from its source in the form the log hashes (``security.records.digest``).

A record is its row's columns with encrypted cells opened (the caller passes the opener, it
holds the keys), without an e-prescription's workflow columns (they change by design; each
change is an anchored event of its own), and with an e-prescription's items beside it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.sql.models import METADATA_BY_KIND
from connectors.sql.queries import Row, fetch_in

# table -> (source kind, primary key). These are the kinds of the records log's leaves.
ANCHORED: dict[str, tuple[str, str]] = {
    "test_results": ("hospital", "result_id"),
    "e_prescriptions": ("hospital", "rx_id"),
    "e_prescription_events": ("hospital", "event_id"),
    "dispensings": ("pharmacy", "dispensing_id"),
    "rx_deliveries": ("pharmacy", "delivery_id"),
    "settlements": ("bureau", "setl_id"),
    "cross_settlements": ("platform", "setl_id"),
}
WORKFLOW_COLUMNS = {
    "e_prescriptions": frozenset(
        {"status", "version", "review_status", "reviewed_by", "reviewed_at", "circulated_to"}
    )
}
# Columns added after records were first anchored: left out of the record while NULL, so a
# record anchored before the column existed keeps its digest.
ADDED_LATER = {"settlements": frozenset({"dispensing_id"})}
ITEMS = {
    "e_prescriptions": ("e_prescription_items", "rx_id"),
    "dispensings": ("dispensing_items", "dispensing_id"),
}

Opener = Callable[[str, str, bytes], str]  # (column, row key, ciphertext) -> plain text


def table_of(kind: str) -> Table:
    return METADATA_BY_KIND[ANCHORED[kind][0]].tables[kind]


def record_of(kind: str, row: Row, items: Sequence[Row], open_cell: Opener) -> dict[str, Any]:
    """The record as the log hashes it (see the module docstring)."""
    key = str(row[ANCHORED[kind][1]])
    skip = WORKFLOW_COLUMNS.get(kind, frozenset())
    later = ADDED_LATER.get(kind, frozenset())
    record: dict[str, Any] = {}
    for column, value in row.items():
        if column.startswith("_") or column in skip or (value is None and column in later):
            continue
        if column.endswith("_enc") and value is not None:
            value = open_cell(column, key, value)
        record[column] = value
    if kind in ITEMS:
        record["items"] = [
            {k: v for k, v in i.items() if not k.startswith("_")}
            for i in sorted(items, key=lambda i: i["item_id"])
        ]
    return record


async def fetch_records(
    engine: AsyncEngine, kind: str, ids: Sequence[str]
) -> dict[str, tuple[Row, list[Row]]]:
    """The rows (and items) of these records at one source, by id; absent ids left out."""
    rows = await fetch_in(engine, table_of(kind), ANCHORED[kind][1], list(ids))
    items: dict[str, list[Row]] = defaultdict(list)
    if kind in ITEMS and rows:
        table_name, column = ITEMS[kind]
        source_kind = ANCHORED[kind][0]
        child = METADATA_BY_KIND[source_kind].tables[table_name]
        for item in await fetch_in(engine, child, column, [r[ANCHORED[kind][1]] for r in rows]):
            items[str(item[column])].append(item)
    key = ANCHORED[kind][1]
    return {str(r[key]): (r, items[str(r[key])]) for r in rows}
