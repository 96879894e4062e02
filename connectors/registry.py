"""The running set of sources: one engine per configured source, opened once at start-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.graphql_peer import PeerClient, PeerSpec
from connectors.sources import SourceSpec
from connectors.sql.engine import create_source_engine, sqlite_path
from connectors.sql.queries import Row, fetch_in
from connectors.sql.sqlite_reader import SqliteReader


@dataclass
class Source:
    spec: SourceSpec
    engine: AsyncEngine
    # Keyed reads of a SQLite file bypass the async engine (see sqlite_reader); writes, and
    # every source on another database, go through the engine.
    reader: SqliteReader | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    async def fetch_in(
        self, table: Table, column: str, keys: Sequence[Any], order_by: Sequence[str] = ()
    ) -> list[Row]:
        """Rows of ``table`` whose ``column`` is one of ``keys``: one statement."""
        if self.reader is None:
            return await fetch_in(self.engine, table, column, keys, order_by=order_by)
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        return await self.reader.fetch_in(table, column, keys, order_by)


def open_source(spec: SourceSpec) -> Source:
    engine = create_source_engine(spec)
    path = sqlite_path(spec.url)
    reader = None
    if path is not None and str(path) != ":memory:" and engine.dialect.driver == "aiosqlite":
        reader = SqliteReader(path, engine.dialect, name=spec.name)
    return Source(spec, engine, reader)


@dataclass
class PeerSource:
    """Another medfed gateway. Never in ``of_kind``: SQL paths cannot meet it by accident."""

    spec: PeerSpec
    client: PeerClient

    @property
    def name(self) -> str:
        return self.spec.name


class StatementCounter:
    """Statements run on a set of sources: through their engines (seen by SQLAlchemy's
    ``before_cursor_execute``) and through their SQLite readers (which count their own)."""

    def __init__(self, sources: list[Source]) -> None:
        self._sources = sources
        self._engine_count = 0
        self._start = 0
        for source in sources:
            event.listen(source.engine.sync_engine, "before_cursor_execute", self._seen)
        self.reset()

    def _seen(self, *_args: Any) -> None:
        self._engine_count += 1

    def _reader_total(self) -> int:
        return sum(s.reader.statements for s in self._sources if s.reader is not None)

    def reset(self) -> None:
        self._engine_count = 0
        self._start = self._reader_total()

    @property
    def count(self) -> int:
        return self._engine_count + self._reader_total() - self._start


class SourceRegistry:
    def __init__(
        self,
        specs: tuple[SourceSpec, ...] | list[SourceSpec],
        peers: tuple[PeerSpec, ...] | list[PeerSpec] = (),
    ) -> None:
        self._sources = {s.name: open_source(s) for s in specs}
        self._peers = {p.name: PeerSource(p, PeerClient(p)) for p in peers}

    def peers(self) -> list[PeerSource]:
        return list(self._peers.values())

    def is_sql(self, name: str) -> bool:
        return name in self._sources

    def __iter__(self):
        return iter(self._sources.values())

    def get(self, name: str) -> Source:
        return self._sources[name]

    def of_kind(self, kind: str) -> list[Source]:
        return [s for s in self._sources.values() if s.spec.kind == kind]

    def directory(self) -> Source | None:
        found = self.of_kind("directory")
        return found[0] if found else None

    async def readiness(self, within: float = 2.0) -> dict[str, dict]:
        """Whether each source answers ``SELECT 1`` within ``within`` seconds."""

        async def probe(source: Source) -> dict:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(within):
                    async with source.engine.connect() as conn:
                        await conn.execute(text("SELECT 1"))
            except Exception as exc:  # any failure is "not ready"; the reason is reported
                return {"ready": False, "kind": source.spec.kind, "error": type(exc).__name__}
            return {
                "ready": True,
                "kind": source.spec.kind,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }

        results = await asyncio.gather(*(probe(s) for s in self._sources.values()))
        found = dict(zip(self._sources, results, strict=True))
        for peer in self._peers.values():
            # The breaker's view, not a probe: readiness must not hammer a struggling peer.
            snapshot = peer.client.breaker.snapshot()
            found[peer.name] = {
                "ready": snapshot["breaker"] != "open",
                "kind": "peer",
                "optional": True,
                **snapshot,
            }
        return found

    def statement_counter(self) -> StatementCounter:
        """Counts SQL statements run against the sources from now on (tests, benchmarks)."""
        return StatementCounter(list(self._sources.values()))

    async def dispose(self) -> None:
        for source in self._sources.values():
            if source.reader is not None:
                source.reader.close()
        await asyncio.gather(
            *(s.engine.dispose() for s in self._sources.values()),
            *(p.client.close() for p in self._peers.values()),
        )
