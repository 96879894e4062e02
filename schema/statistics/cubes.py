"""The SUPPRESSED grades' cubes, computed ahead of the question and once for every caller.

A SUPPRESSED answer is a view of its grade's whole cube (every level of up to 4 dimensions,
suppressed once: see ``security.privacy.suppression``); computing it is the costly part of
open data (2^n ``GROUP BY`` levels at each source). This cache keeps each cube with its
pattern for ``ttl`` seconds, and:

- **single flight**: callers that find no fresh cube wait for the one computation in
  progress instead of each starting their own (a burst of cold questions costs one cube);
- **refresh ahead**: a question that finds a cube older than ``refresh_after`` is answered
  from it at once and starts its recomputation in the background, so while questions keep
  coming none waits for a cube after the first. No answer is ever given from a cube older
  than ``ttl``: past it, the caller waits for the fresh one.

Only complete cubes are kept (a source that failed makes a cube that is answered once,
with the failure, and not reused). What is cached lives in memory only: nothing exact about
small cells is written anywhere by this cache.

Usage::

    cube, pattern = await cache.get(key, compute)   # compute() -> (value, complete)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("medfed.statistics")


class CubeCache(Generic[T]):
    def __init__(
        self,
        ttl: float,
        refresh_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < refresh_after <= ttl:
            raise ValueError("refresh_after must be in (0, ttl]")
        self.ttl = ttl
        self.refresh_after = refresh_after
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, T]] = {}
        self._running: dict[Hashable, asyncio.Task[T]] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[tuple[T, bool]]]) -> T:
        hit = self._entries.get(key)
        if hit is not None:
            age = self.clock() - hit[0]
            if age < self.ttl:
                if age >= self.refresh_after and key not in self._running:
                    self._start(key, compute)
                return hit[1]
        task = self._running.get(key) or self._start(key, compute)
        # Shielded: a caller that goes away does not cancel the others' computation.
        return await asyncio.shield(task)

    def refreshing(self, key: Hashable) -> asyncio.Task[T] | None:
        """The computation in progress for ``key``, if any (for tests and shutdown)."""
        return self._running.get(key)

    def _start(
        self, key: Hashable, compute: Callable[[], Awaitable[tuple[T, bool]]]
    ) -> asyncio.Task[T]:
        # The cube's age counts from when its computation began: its rows are at least that old.
        started = self.clock()

        async def work() -> T:
            try:
                value, complete = await compute()
                if complete:
                    self._entries[key] = (started, value)
                return value
            finally:
                self._running.pop(key, None)

        task = asyncio.get_running_loop().create_task(work())
        task.add_done_callback(_report)
        self._running[key] = task
        return task


def _report(task: asyncio.Task) -> None:
    # A refresh in the background, which nobody awaits, must still say that it failed (by the
    # kind of error only: a message could carry what a source said).
    if not task.cancelled() and task.exception() is not None:
        log.warning("statistics cube not computed: %s", type(task.exception()).__name__)
