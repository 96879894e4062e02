"""Run one query on many sources at once, within a deadline, keeping what answered.

Each query runs behind its source's health guard (``Source.guarded``). A source that fails,
is unavailable or misses the deadline becomes a :class:`SourceFailure` with a stable reason
code (``connectors.health.Reason``, or a peer's own); the caller turns those into
``SOURCE_UNAVAILABLE`` errors beside the partial data, never a 500.

Peers (other gateways) are held to a share of the request's deadline, and a peer that failed
once in a request is not asked again in it: a stopped peer costs a request one wait, within
its share, and the local sources keep the rest of the deadline for the request's later reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sized
from dataclasses import dataclass
from typing import TypeVar

from connectors import observe
from connectors.graphql_peer.client import PEER_TIMEOUT, PeerError
from connectors.health import reason_of
from connectors.registry import PeerSource, Source

T = TypeVar("T")
log = logging.getLogger("medfed.sources")

# Peers answer within the first 60 % of a request's deadline (3 s of the default 5 s); the
# last 40 % is kept for local sources ([gateway] peer_deadline_share).
DEFAULT_PEER_SHARE = 0.6


@dataclass(frozen=True)
class SourceFailure:
    source: str
    reason: str  # a stable code (FILE_MISSING, DEADLINE_EXCEEDED, …), never data values


class Deadline:
    """The moment a request must have its data by (monotonic clock), and the earlier moment
    its peers must have answered by (``peer_share`` of the whole)."""

    def __init__(self, seconds: float, peer_share: float = DEFAULT_PEER_SHARE) -> None:
        now = time.monotonic()
        self.at = now + seconds
        self.peers_at = now + seconds * peer_share
        # Every source a request asked, answered or not: the audit log names them.
        self.touched: set[str] = set()
        # Peers that failed in this request, with their reason: reported, not asked again.
        self.failed_peers: dict[str, str] = {}

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def peer_remaining(self) -> float:
        return max(0.0, min(self.at, self.peers_at) - time.monotonic())


async def fan_out(
    sources: Iterable[Source | PeerSource],
    query: Callable[[Source | PeerSource], Awaitable[T]],
    deadline: Deadline,
) -> tuple[dict[str, T], list[SourceFailure]]:
    sources = list(sources)
    deadline.touched.update(s.name for s in sources)

    async def one(source: Source | PeerSource) -> T:
        peer = isinstance(source, PeerSource)
        if peer and source.name in deadline.failed_peers:
            raise PeerError(deadline.failed_peers[source.name], "failed earlier in this request")
        with observe.fetching(source) as fetch:  # telemetry: a span and timings per source
            async with asyncio.timeout(deadline.peer_remaining() if peer else deadline.remaining()):
                result = await source.guarded(lambda: query(source))
            fetch.rows = len(result) if isinstance(result, Sized) else None
            return result

    outcomes = await asyncio.gather(*(one(s) for s in sources), return_exceptions=True)
    results: dict[str, T] = {}
    failures: list[SourceFailure] = []
    for source, outcome in zip(sources, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            reason = reason_of(outcome)
            if isinstance(source, PeerSource):
                # Cut at its share of the deadline: the peer was slow, not the request.
                reason = PEER_TIMEOUT if isinstance(outcome, TimeoutError) else reason
                deadline.failed_peers.setdefault(source.name, reason)
            log.warning("source %s unavailable: %s", source.name, reason)
            failures.append(SourceFailure(source.name, reason))
        else:
            results[source.name] = outcome
    return results, failures
