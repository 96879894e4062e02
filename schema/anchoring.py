"""Anchoring published original records in the records log, and the `integrity` of a read:
whether the record as its source holds it now still hashes to what the log committed to.

``anchor`` runs after a mutation's write landed: it reads the record back from its source (so
the digest is of what the source holds) and appends it; appending is idempotent, so a retried
mutation anchors once. ``integrity`` is VERIFIED (anchored, unchanged), CHANGED (anchored,
different now) or UNANCHORED (never anchored: a record that did not come through medfed's
mutations, such as the demo's, or a peer's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry

from connectors.registry import Source
from connectors.sql import anchoring
from schema.enums import RecordIntegrity
from schema.mutations import lookups
from security.records import Anchor, RecordsLog
from security.records.digest import digest
from security.records.log import new_salt

RECORDS_LOG = "records_log"  # Services.extras: the RecordsLog


def records_log(ctx: Any) -> RecordsLog | None:
    return ctx.services.extras.get(RECORDS_LOG)


def opener(ctx: Any, source: str, kind: str) -> anchoring.Opener:
    def open_cell(column: str, key: str, blob: bytes) -> str:
        return ctx.cipher.decrypt(blob, source=source, table=kind, column=column, row_key=key)

    return open_cell


async def anchor(ctx: Any, source: Source, kind: str, ids: Sequence[str]) -> None:
    """Anchor these records of ``kind`` at ``source`` (as the source now holds them)."""
    log = records_log(ctx)
    if log is None:
        return
    found = await lookups.ask(ctx, source, lambda e: anchoring.fetch_records(e, kind, ids))
    anchors = []
    for record_id, (row, items) in found.items():
        salt = new_salt()
        record = anchoring.record_of(kind, row, items, opener(ctx, source.name, kind))
        anchors.append(
            Anchor(kind, source.name, record_id, digest(kind, record, salt, log.profile), salt)
        )
    await log.append(anchors)


async def integrity(
    info: strawberry.Info, kind: str, row: dict, items: list[dict] | None = None
) -> RecordIntegrity:
    ctx = info.context
    log = records_log(ctx)
    source = row.get("_source")
    if log is None or kind not in anchoring.ANCHORED or not ctx.registry.is_sql(source):
        return RecordIntegrity.UNANCHORED
    record_id = str(row[anchoring.ANCHORED[kind][1]])
    entry = await ctx.loaders.anchors.load((kind, source, record_id))
    if entry is None:
        return RecordIntegrity.UNANCHORED
    record = anchoring.record_of(kind, row, items or [], opener(ctx, source, kind))
    same = digest(kind, record, entry["salt"], log.profile) == entry["digest"]
    return RecordIntegrity.VERIFIED if same else RecordIntegrity.CHANGED
