"""Run one query on many sources at once, within a deadline, keeping what answered.

Each query runs behind its source's health guard (``Source.guarded``). A source that fails,
is unavailable or misses the deadline becomes a :class:`SourceFailure` with a stable reason
code (``connectors.health.Reason``, or a peer's own); the caller turns those into
``SOURCE_UNAVAILABLE`` errors beside the partial data, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sized
from dataclasses import dataclass
from typing import TypeVar

from connectors import observe
from connectors.health import reason_of
from connectors.registry import Source

T = TypeVar("T")
log = logging.getLogger("medfed.sources")


@dataclass(frozen=True)
class SourceFailure:
    source: str
    reason: str  # a stable code (FILE_MISSING, DEADLINE_EXCEEDED, …), never data values


class Deadline:
    """The moment a request must have its data by (monotonic clock)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        # Every source a request asked, answered or not: the audit log names them.
        self.touched: set[str] = set()

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())


async def fan_out(
    sources: Iterable[Source],
    query: Callable[[Source], Awaitable[T]],
    deadline: Deadline,
) -> tuple[dict[str, T], list[SourceFailure]]:
    sources = list(sources)
    deadline.touched.update(s.name for s in sources)

    async def one(source: Source) -> T:
        with observe.fetching(source) as fetch:  # telemetry: a span and timings per source
            async with asyncio.timeout(deadline.remaining()):
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
            log.warning("source %s unavailable: %s", source.name, reason)
            failures.append(SourceFailure(source.name, reason))
        else:
            results[source.name] = outcome
    return results, failures
