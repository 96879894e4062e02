"""The running set of sources: one engine per configured source, opened once at start-up,
each behind its health guard (``connectors.health``): every query goes through
``Source.guarded``, which refuses with a stable reason while the source is unavailable and
reopens its connections once it answers again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Table, event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.graphql_peer import PeerClient, PeerSpec
from connectors.health import HealthSettings, SourceHealth
from connectors.sources import SourceSpec
from connectors.sql.engine import SERVING_BUSY_TIMEOUT_MS, create_source_engine, sqlite_path
from connectors.sql.pg_reader import PgPool, PgReader
from connectors.sql.queries import Row, fetch_in
from connectors.sql.sqlite_reader import SqliteReader
from connectors.sql.top import top_rows
from connectors.sql.watch import FileWatch

T = TypeVar("T")

# The national cross-province platform's organisation code (国家医疗保障局, the national level).
PLATFORM_ORG = "100000"


@dataclass
class Source:
    spec: SourceSpec
    engine: AsyncEngine
    # Keyed reads bypass the async engine: of a SQLite file (see sqlite_reader), of a
    # PostgreSQL database through asyncpg on held connections (see pg_reader); writes, and
    # sources on any other database, go through the engine.
    reader: SqliteReader | PgReader | None = None
    watch: FileWatch | None = None  # a SQLite file's identity and header
    health: SourceHealth = field(init=False)
    settings: InitVar[HealthSettings | None] = None

    def __post_init__(self, settings: HealthSettings | None) -> None:
        self.health = SourceHealth(
            self.spec.name,
            settings or HealthSettings(),
            probe=self._probe,
            reset=self._reset,
            check=self.watch.check if self.watch is not None else None,
        )

    @property
    def name(self) -> str:
        return self.spec.name

    async def guarded(self, work: Callable[[], Awaitable[T]]) -> T:
        """``work()`` against this source, or :class:`connectors.health.SourceDown`."""
        return await self.health.guard(work)

    async def _reset(self) -> None:
        # Every connection is dropped, so the next ones open whatever file or server is
        # there now (pooled SQLite connections would keep reading a replaced file).
        if isinstance(self.reader, PgReader):
            await self.reader.reset()
        elif self.reader is not None:
            self.reader.reset()
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def _probe(self) -> None:
        if self.watch is not None:
            await asyncio.to_thread(self.watch.probe)
            return
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT version_num FROM alembic_version"))

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

    async def fetch_top(
        self,
        table: Table,
        column: str,
        keys: Sequence[Any],
        order: Sequence[str],
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[Row]:
        """Each key's newest ``limit`` rows in the ``order`` sort, strictly before ``after``:
        one statement (a keyset page in SQL, ``connectors.sql.top``)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        if self.reader is None:
            rows = await fetch_in(self.engine, table, column, keys)
            return top_rows(rows, column, order, after, limit)
        return await self.reader.fetch_top(table, column, keys, order, after, limit)


def open_source(
    spec: SourceSpec,
    settings: HealthSettings | None = None,
    pg_pools: dict[str, PgPool] | None = None,
) -> Source:
    """A source with its engine and reader; PostgreSQL sources on one database URL share
    that URL's reader pool in ``pg_pools`` (made here when missing)."""
    engine = create_source_engine(
        spec, **({"busy_timeout_ms": SERVING_BUSY_TIMEOUT_MS} if spec.is_sqlite else {})
    )
    path = sqlite_path(spec.url)
    reader: SqliteReader | PgReader | None = None
    watch = None
    if path is not None and str(path) != ":memory:":
        watch = FileWatch(spec.name, path)
        if engine.dialect.driver == "aiosqlite":
            reader = SqliteReader(path, engine.dialect, name=spec.name)
    elif engine.dialect.driver == "asyncpg":
        pools = {} if pg_pools is None else pg_pools
        pool = pools.get(spec.url)
        if pool is None:
            pool = pools[spec.url] = PgPool(spec.url)
        reader = PgReader(pool, engine.dialect, spec.schema)
    return Source(spec, engine, reader, watch, settings=settings)


@dataclass
class PeerSource:
    """Another medfed gateway. Never in ``of_kind``: SQL paths cannot meet it by accident."""

    spec: PeerSpec
    client: PeerClient

    @property
    def name(self) -> str:
        return self.spec.name

    async def guarded(self, work: Callable[[], Awaitable[T]]) -> T:
        # A peer's health is its circuit breaker, inside its client.
        return await work()


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
        health: HealthSettings | None = None,
    ) -> None:
        self._pg_pools: dict[str, PgPool] = {}
        self._sources = {s.name: open_source(s, health, self._pg_pools) for s in specs}
        self._peers = {p.name: PeerSource(p, PeerClient(p)) for p in peers}

    def peers(self) -> list[PeerSource]:
        return list(self._peers.values())

    def is_sql(self, name: str) -> bool:
        return name in self._sources

    def __iter__(self):
        return iter(self._sources.values())

    def get(self, name: str) -> Source:
        return self._sources[name]

    def holder(self, name: str) -> str | None:
        """The organisation holding a source's data: a hospital's or pharmacy's code, a
        bureau's (or a peer's) region, the national platform's code; None for the public
        institution directory or an unknown name. The audit log names these as data holders."""
        source = self._sources.get(name) or self._peers.get(name)
        if source is None or source.spec.kind == "directory":
            return None
        if source.spec.kind == "platform":
            return PLATFORM_ORG
        spec = source.spec
        return getattr(spec, "institution", None) or getattr(spec, "region", None)

    def of_kind(self, kind: str) -> list[Source]:
        return [s for s in self._sources.values() if s.spec.kind == kind]

    def directory(self) -> Source | None:
        found = self.of_kind("directory")
        return found[0] if found else None

    async def readiness(self, within: float = 2.0) -> dict[str, dict]:
        """Each source's health: an available one is asked ``SELECT 1`` through its guard
        (so a file replaced since is noticed here too), an unavailable one is not touched
        (its own probe is retrying it with backoff)."""

        async def probe(source: Source) -> dict:
            started = time.perf_counter()
            if source.health.available:
                try:
                    async with asyncio.timeout(within):
                        await source.guarded(source.ping)
                except Exception:  # noqa: S110 (the guard recorded the reason, if it is the source's)
                    pass
            state = {"kind": source.spec.kind, **source.health.snapshot()}
            if state["health"] == "ok":
                state["ms"] = round((time.perf_counter() - started) * 1000, 1)
            return state

        results = await asyncio.gather(*(probe(s) for s in self._sources.values()))
        found = dict(zip(self._sources, results, strict=True))
        for peer in self._peers.values():
            # The breaker's view, not a probe: readiness must not hammer a struggling peer.
            snapshot = peer.client.breaker.snapshot()
            found[peer.name] = {
                "kind": "peer",
                "health": "unavailable" if snapshot["breaker"] == "open" else "ok",
                **snapshot,
            }
        return found

    def statement_counter(self) -> StatementCounter:
        """Counts SQL statements run against the sources from now on (tests, benchmarks)."""
        return StatementCounter(list(self._sources.values()))

    async def dispose(self) -> None:
        for source in self._sources.values():
            await source.health.close()
            if isinstance(source.reader, SqliteReader):
                source.reader.close()
        await asyncio.gather(
            *(pool.close() for pool in self._pg_pools.values()),
            *(s.engine.dispose() for s in self._sources.values()),
            *(p.client.close() for p in self._peers.values()),
        )
