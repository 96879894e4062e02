"""DataLoaders: one batched query per source per nesting level, whatever the row count.

Person-keyed loaders fan out to every source of a kind at once (within the request's
deadline); row-keyed loaders (``(source, id)``) ask only the source the parent row came from.
Rows carry ``_source``, the name of the source they came from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from strawberry.dataloader import DataLoader

from connectors.fanout import fan_out
from connectors.graphql_peer.rows import BY_TABLE, fetch_rows
from connectors.registry import PeerSource, Source
from connectors.sql.models import bureau, directory, hospital, pharmacy, platform
from connectors.sql.queries import Row
from connectors.sql.top import top_rows

if TYPE_CHECKING:
    from schema.context import RequestContext


def _table(model: Any) -> Table:
    return model.__table__


async def _fetch_tagged(
    source: Source, table: Table, column: str, keys: Sequence[Any]
) -> list[Row]:
    """Rows of ``table`` whose ``column`` is in ``keys``, each tagged with its source, so
    child rows can later be asked of the same source."""
    rows = await source.fetch_in(table, column, keys)
    for row in rows:
        row["_source"] = source.name
    return rows


class Loaders:
    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx
        # (kind, table) of each person-keyed loader, and the keyset-page loaders made from
        # them: a list whose page can be cut in SQL asks these instead (see ``page_of``).
        self._fans: dict[DataLoader, tuple[str, Table]] = {}
        self._pages: dict[tuple[str, str, tuple[str, ...]], DataLoader] = {}
        by_ref = self._fan_loader
        self.persons = by_ref("bureau", _table(bureau.Person), "person_ref")
        self.persons_by_id_bidx = by_ref("bureau", _table(bureau.Person), "id_number_bidx")
        self.enrollments = by_ref("bureau", _table(bureau.Enrollment), "person_ref")
        self.visits = by_ref("bureau", _table(bureau.Visit), "person_ref")
        self.prescriptions = by_ref("bureau", _table(bureau.Prescription), "person_ref")
        self.settlements = by_ref("bureau", _table(bureau.Settlement), "person_ref")
        self.test_results = by_ref("hospital", _table(hospital.TestResult), "person_ref")
        self.dispensings = by_ref("pharmacy", _table(pharmacy.Dispensing), "person_ref")
        self.filings = by_ref("platform", _table(platform.Filing), "person_ref")
        self.cross_settlements = by_ref("platform", _table(platform.CrossSettlement), "person_ref")
        scoped = self._scoped_loader
        self.prescriptions_by_visit = scoped(_table(bureau.Prescription), "mdtrt_id")
        self.rx_items = scoped(_table(bureau.PrescriptionItem), "rx_id")
        self.e_rx_items = scoped(_table(hospital.EPrescriptionItem), "rx_id")
        self.dispensing_items = scoped(_table(pharmacy.DispensingItem), "dispensing_id")
        self.institutions = DataLoader(self._load_institutions)
        # (kind, source, record id) -> the records log's leaf entry, or None
        self.anchors = DataLoader(self._load_anchors)

    # -- factories ------------------------------------------------------------------------------
    def _fan_loader(self, kind: str, table: Table, column: str) -> DataLoader[str, list[Row]]:
        ctx = self.ctx
        # Peers are asked by personId only (their blind indexes are not ours to compute).
        peer_kind = BY_TABLE.get(table.name) if column == "person_ref" else None

        async def query(source: Source | PeerSource, keys: Sequence[str]) -> list[Row]:
            if isinstance(source, PeerSource):
                return await fetch_rows(
                    source.client, peer_kind, list(keys), ctx.deadline.peer_remaining()
                )
            return await _fetch_tagged(source, table, column, keys)

        async def load(keys: Sequence[str]) -> list[list[Row]]:
            sources: list = ctx.registry.of_kind(kind)
            if peer_kind is not None:
                sources += ctx.registry.peers()
            results, failures = await fan_out(
                sources, lambda source: query(source, keys), ctx.deadline
            )
            ctx.note_failures(failures)
            grouped: dict[Hashable, list[Row]] = defaultdict(list)
            for rows in results.values():
                for row in rows:
                    grouped[row[column]].append(row)
            return [grouped.get(k, []) for k in keys]

        loader: DataLoader[str, list[Row]] = DataLoader(load)
        if column == "person_ref":
            self._fans[loader] = (kind, table)
        return loader

    def page_of(
        self, loader: DataLoader, order: tuple[str, ...]
    ) -> DataLoader[tuple[str, tuple | None, int], list[Row]]:
        """The keyset-page loader of a person-keyed ``loader``: keyed by (personId, cursor
        key or None, n), each source answers each person's newest ``n`` rows in the
        ``order`` sort after the cursor, in one statement for all the persons asked."""
        kind, table = self._fans[loader]
        found = self._pages.get((kind, table.name, order))
        if found is None:
            found = self._pages[(kind, table.name, order)] = self._page_loader(kind, table, order)
        return found

    def _page_loader(self, kind: str, table: Table, order: tuple[str, ...]) -> DataLoader:
        ctx = self.ctx
        peer_kind = BY_TABLE.get(table.name)

        async def query(
            source: Source | PeerSource, refs: list[str], after: tuple | None, n: int
        ) -> list[Row]:
            if isinstance(source, PeerSource):  # a peer answers whole lists: cut here
                rows = await fetch_rows(
                    source.client, peer_kind, refs, ctx.deadline.peer_remaining()
                )
                return top_rows(rows, "person_ref", order, after, n)
            rows = await source.fetch_top(table, "person_ref", refs, order, after, n)
            for row in rows:
                row["_source"] = source.name
            return rows

        async def load(keys: Sequence[tuple[str, tuple | None, int]]) -> list[list[Row]]:
            sources: list = ctx.registry.of_kind(kind)
            if peer_kind is not None:
                sources += ctx.registry.peers()
            asked: dict[tuple[tuple | None, int], list[str]] = defaultdict(list)
            for ref, after, n in keys:
                asked[(after, n)].append(ref)
            grouped: dict[Hashable, list[Row]] = defaultdict(list)
            for (after, n), refs in asked.items():
                results, failures = await fan_out(
                    sources,
                    lambda source, refs=refs, after=after, n=n: query(source, refs, after, n),
                    ctx.deadline,
                )
                ctx.note_failures(failures)
                for rows in results.values():
                    for row in rows:
                        grouped[(row["person_ref"], after, n)].append(row)
            return [grouped.get(k, []) for k in keys]

        return DataLoader(load)

    def _scoped_loader(self, table: Table, column: str) -> DataLoader[tuple[str, str], list[Row]]:
        ctx = self.ctx

        async def load(keys: Sequence[tuple[str, str]]) -> list[list[Row]]:
            wanted: dict[str, list[str]] = defaultdict(list)
            for source_name, key in keys:
                # A peer row's children (prescription items, ...) are not fetched from the
                # peer: they stay empty rather than being asked of a database they are not in.
                if ctx.registry.is_sql(source_name):
                    wanted[source_name].append(key)
            sources = [ctx.registry.get(name) for name in wanted]

            results, failures = await fan_out(
                sources,
                lambda source: _fetch_tagged(source, table, column, wanted[source.name]),
                ctx.deadline,
            )
            ctx.note_failures(failures)
            grouped: dict[tuple[str, str], list[Row]] = defaultdict(list)
            for name, rows in results.items():
                for row in rows:
                    grouped[(name, row[column])].append(row)
            return [grouped.get(k, []) for k in keys]

        return DataLoader(load)

    async def _load_anchors(self, keys: Sequence[tuple[str, str, str]]) -> list[dict | None]:
        log = self.ctx.services.extras.get("records_log")
        found = {} if log is None else await log.entries(list(keys))
        return [found.get(k) for k in keys]

    async def _load_institutions(self, codes: Sequence[str]) -> list[Row | None]:
        source = self.ctx.registry.directory()
        if source is None:
            return [None] * len(codes)
        table = _table(directory.Institution)
        results, failures = await fan_out(
            [source], lambda s: s.fetch_in(table, "code", codes), self.ctx.deadline
        )
        self.ctx.note_failures(failures)
        found = {r["code"]: r for rows in results.values() for r in rows}
        return [found.get(code) for code in codes]
