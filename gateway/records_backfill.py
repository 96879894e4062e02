"""Anchoring records that did not come through a mutation: the demo's generated rows (after
``medfed demo build``), so they read ``integrity: VERIFIED`` like the mutations' rows. Each
anchored table of each source is read in primary-key order, a batch at a time, every record
put in its canonical form (encrypted cells opened) and appended; appending is idempotent, so
a record anchored already keeps its first anchor."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from connectors.sources import SourceSpec
from connectors.sql import anchoring
from connectors.sql.engine import create_source_engine
from connectors.sql.queries import Row
from security.crypto import FieldCipher
from security.records import Anchor, RecordsLog
from security.records.digest import digest
from security.records.log import new_salt

BATCH = 5_000


async def anchor_sources(
    records: RecordsLog, specs: Iterable[SourceSpec], cipher: FieldCipher, batch: int = BATCH
) -> dict[str, int]:
    """Anchor every record of every anchored table at these sources; counts by table."""
    counts: dict[str, int] = {}
    for spec in specs:
        kinds = [k for k, (kind, _key) in anchoring.ANCHORED.items() if kind == spec.kind]
        if not kinds:
            continue
        engine = create_source_engine(spec)
        try:
            for kind in kinds:
                counts[kind] = counts.get(kind, 0) + await _anchor_table(
                    records, engine, spec.name, kind, cipher, batch
                )
        finally:
            await engine.dispose()
    return counts


async def _anchor_table(records, engine, source: str, kind: str, cipher, batch: int) -> int:
    table = anchoring.table_of(kind)
    key = anchoring.ANCHORED[kind][1]
    done, after = 0, None
    while True:
        query = select(table.c[key]).order_by(table.c[key]).limit(batch)
        if after is not None:
            query = query.where(table.c[key] > after)
        async with engine.connect() as conn:
            ids = [str(r) for r in (await conn.execute(query)).scalars()]
        if not ids:
            return done
        found = await anchoring.fetch_records(engine, kind, ids)
        anchors = [_anchor(kind, source, rid, *found[rid], cipher, records.profile) for rid in ids]
        await records.append(anchors)
        done += len(anchors)
        after = ids[-1]


def _anchor(
    kind: str, source: str, record_id: str, row: Row, items: list[Row], cipher, profile: str
) -> Anchor:
    def open_cell(column: str, row_key: str, blob: bytes) -> str:
        return cipher.decrypt(blob, source=source, table=kind, column=column, row_key=row_key)

    salt = new_salt()
    record = anchoring.record_of(kind, row, items, open_cell)
    return Anchor(kind, source, record_id, digest(kind, record, salt, profile), salt)
