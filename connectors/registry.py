"""The running set of sources: one engine per configured source, opened once at start-up."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.graphql_peer import PeerClient, PeerSpec
from connectors.sources import SourceSpec
from connectors.sql.engine import create_source_engine


@dataclass
class Source:
    spec: SourceSpec
    engine: AsyncEngine

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class PeerSource:
    """Another medfed gateway. Never in ``of_kind``: SQL paths cannot meet it by accident."""

    spec: PeerSpec
    client: PeerClient

    @property
    def name(self) -> str:
        return self.spec.name


class SourceRegistry:
    def __init__(self, specs: tuple[SourceSpec, ...] | list[SourceSpec],
                 peers: tuple[PeerSpec, ...] | list[PeerSpec] = ()) -> None:
        self._sources = {s.name: Source(s, create_source_engine(s)) for s in specs}
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
                return {"ready": False, "kind": source.spec.kind,
                        "error": type(exc).__name__}
            return {"ready": True, "kind": source.spec.kind,
                    "ms": round((time.perf_counter() - started) * 1000, 1)}

        results = await asyncio.gather(*(probe(s) for s in self._sources.values()))
        found = dict(zip(self._sources, results, strict=True))
        for peer in self._peers.values():
            # The breaker's view, not a probe: readiness must not hammer a struggling peer.
            snapshot = peer.client.breaker.snapshot()
            found[peer.name] = {"ready": snapshot["breaker"] != "open", "kind": "peer",
                                "optional": True, **snapshot}
        return found

    async def dispose(self) -> None:
        await asyncio.gather(*(s.engine.dispose() for s in self._sources.values()),
                             *(p.client.close() for p in self._peers.values()))
