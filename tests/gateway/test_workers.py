"""``medfed serve --workers N``: each worker listens on a socket of its own (SO_REUSEPORT), so
a burst of keep-alive clients is shared out instead of landing on one worker, and a worker
that dies leaves no socket behind that nobody accepts on."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from gateway.reuseport import reuse_port_available
from tests.support.federation import Federation
from tests.support.served import serve

PING = {"query": "query Ping { __typename }"}
CLIENTS = 16  # all on one worker by chance: 2 ** -15

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not reuse_port_available(), reason="no SO_REUSEPORT here"),
]


def _pids(served) -> list[int]:
    return [
        r["pid"]
        for r in served.records()
        if r.get("logger") == "medfed.access" and r.get("path") == "/graphql"
    ]


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited (gone, or a zombie its parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def _gone(pid: int) -> None:
    for _ in range(200):
        if _exited(pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"worker {pid} still runs after SIGKILL")


async def _burst(url: str, token: str, clients: int, rounds: int) -> None:
    """``clients`` keep-alive connections opened at once, each sending ``rounds`` pings."""
    headers = {"Authorization": f"Bearer {token}"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for _ in range(rounds):
                assert (await http.post("/graphql", json=PING, headers=headers)).status_code == 200

    await asyncio.gather(*(client() for _ in range(clients)))


def _started(served) -> list[int]:
    return sorted(
        {r["pid"] for r in served.records() if r["message"] == "Application startup complete."}
    )


async def test_connections_queued_while_the_workers_are_busy_are_shared_out(data_dir) -> None:
    """Both workers stopped (as if busy), sixteen clients connect and send: the kernel queues
    the connections. With one shared socket the first worker to wake accepts the whole queue
    (asyncio accepts all it finds); with a socket each, each has its own queue."""
    fed = await Federation(data_dir).setup()
    token = fed.token("settlement_center", "330000")
    with serve(data_dir, "--workers", "2") as served:
        served.wait_for_workers(2)
        workers = _started(served)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            burst = asyncio.create_task(_burst(served.url, token, CLIENTS, 1))
            await asyncio.sleep(2.0)  # every client connected and waiting for its answer
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        await burst
        await asyncio.sleep(0.5)  # the access lines are written after the answers
        pids = _pids(served)
    assert len(pids) == CLIENTS
    counts = sorted(pids.count(pid) for pid in workers)
    assert counts[0] >= 3, counts  # by address hash: 8 each on average, 16-0 at 2 ** -15


async def test_a_dead_workers_place_is_taken_and_no_connection_hangs(data_dir) -> None:
    fed = await Federation(data_dir).setup()
    token = fed.token("settlement_center", "330000")
    with serve(data_dir, "--workers", "2") as served:
        served.wait_for_workers(2)
        await _burst(served.url, token, CLIENTS, 1)
        victim = _pids(served)[0]
        os.kill(victim, signal.SIGKILL)
        await _gone(victim)  # the kill is asynchronous: its socket closes as it exits
        # Until its replacement starts, every new connection goes to the live worker: the
        # dead one's socket closed with it (the parent holds none), so none waits forever.
        await _burst(served.url, token, CLIENTS, 1)
        served.wait_for_workers(3)  # the supervisor started a replacement
        before = len(_pids(served))
        await _burst(served.url, token, CLIENTS, 2)
        await asyncio.sleep(0.5)
        later = set(_pids(served)[before:])
    assert victim not in later and len(later) == 2, later
