"""The SUPPRESSED grades' cube cache: one computation for a burst of callers, refreshed ahead
of its expiry, never answering from a cube older than its TTL."""

from __future__ import annotations

import asyncio
import logging

import pytest

from schema.statistics.cubes import CubeCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """Counts computations; each can be held until released, to see who waits for it."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.complete = True
        self.fail = False

    async def compute(self) -> tuple[str, bool]:
        self.calls += 1
        mine = self.calls
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("the source went away")
        return f"cube {mine}", self.complete


async def test_a_burst_of_cold_callers_costs_one_computation():
    clock, source = Clock(), Source()
    cache = CubeCache(300, 240, clock)
    source.gate = asyncio.Event()
    callers = [asyncio.create_task(cache.get("k", source.compute)) for _ in range(6)]
    await asyncio.sleep(0)
    source.gate.set()
    assert await asyncio.gather(*callers) == ["cube 1"] * 6
    assert source.calls == 1
    # Positive control: another key is another computation.
    assert await cache.get("other", source.compute) == "cube 2"


async def test_an_ageing_cube_is_answered_at_once_and_refreshed_behind():
    clock, source = Clock(), Source()
    cache = CubeCache(300, 240, clock)
    assert await cache.get("k", source.compute) == "cube 1"
    clock.now += 100
    assert await cache.get("k", source.compute) == "cube 1"
    assert source.calls == 1 and cache.refreshing("k") is None  # young: no refresh

    clock.now += 150  # 250 s old: past refresh_after, within the TTL
    source.gate = asyncio.Event()  # the refresh cannot finish yet ...
    answer = await asyncio.wait_for(cache.get("k", source.compute), 1)
    assert answer == "cube 1"  # ... and the caller did not wait for it
    task = cache.refreshing("k")
    assert task is not None and source.calls == 2
    # Another caller meanwhile starts no second refresh.
    assert await cache.get("k", source.compute) == "cube 1" and source.calls == 2
    source.gate.set()
    await task
    assert await cache.get("k", source.compute) == "cube 2" and source.calls == 2


async def test_no_answer_from_a_cube_older_than_the_ttl():
    clock, source = Clock(), Source()
    cache = CubeCache(300, 300, clock)  # no refresh ahead: the positive control of the above
    assert await cache.get("k", source.compute) == "cube 1"
    clock.now += 299
    assert await cache.get("k", source.compute) == "cube 1"
    assert cache.refreshing("k") is None
    clock.now += 1  # exactly the TTL: stale, the caller waits for a fresh cube
    assert await cache.get("k", source.compute) == "cube 2" and source.calls == 2


async def test_a_cube_with_a_failed_source_is_not_kept():
    clock, source = Clock(), Source()
    cache = CubeCache(300, 240, clock)
    source.complete = False
    assert await cache.get("k", source.compute) == "cube 1"
    source.complete = True
    assert await cache.get("k", source.compute) == "cube 2"
    assert await cache.get("k", source.compute) == "cube 2" and source.calls == 2


async def test_a_failed_refresh_keeps_the_cube_until_its_ttl(caplog):
    clock, source = Clock(), Source()
    cache = CubeCache(300, 240, clock)
    assert await cache.get("k", source.compute) == "cube 1"
    clock.now += 250
    source.fail = True
    with caplog.at_level(logging.WARNING, logger="medfed.statistics"):
        assert await cache.get("k", source.compute) == "cube 1"
        task = cache.refreshing("k")
        assert task is not None
        with pytest.raises(RuntimeError):
            await task
        await asyncio.sleep(0)
    assert "not computed: RuntimeError" in caplog.text
    assert "went away" not in caplog.text  # the reason's kind, never its text
    assert await cache.get("k", source.compute) == "cube 1"  # still within the TTL
    clock.now += 50
    with pytest.raises(RuntimeError):
        await cache.get("k", source.compute)  # stale now: the caller gets the failure
    source.fail = False
    assert await cache.get("k", source.compute) == "cube 4"


def test_the_refresh_point_lies_within_the_ttl():
    with pytest.raises(ValueError):
        CubeCache(300, 301)
    with pytest.raises(ValueError):
        CubeCache(300, 0)
