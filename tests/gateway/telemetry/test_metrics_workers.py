"""/metrics across ``medfed serve --workers 2``: every worker's requests are counted once,
on a listen address of its own, a restart starts the counts from nothing, and a worker
killed outright leaves the live sums."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.federation import Federation
from tests.support.processes import free_port
from tests.support.served import serve

PING = {"query": "query Ping { __typename }"}


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def status(url: str, post: bool = False) -> int:
    if post:
        return httpx.post(url, json=PING, timeout=20).status_code
    return httpx.get(url, timeout=10).status_code


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def pinged(url: str, token: str, want: int, access: callable) -> int:
    """Pings on fresh connections until both workers have answered (bounded)."""
    sent = 0
    while sent < 200:
        response = httpx.post(
            url + "/graphql", json=PING, headers={"Authorization": f"Bearer {token}"}, timeout=20
        )
        assert response.status_code == 200
        sent += 1
        if sent >= 10 and len(access()) >= want:
            break
    return sent


@pytest.mark.slow
async def test_two_workers_counts_add_up_and_a_restart_starts_from_zero(data_dir):
    fed = await Federation(data_dir).setup()
    token = fed.token("settlement_center", "330000")
    for run, workers in ((1, 2), (2, 1)):  # the second run: its own counts only
        port = free_port()
        metrics_url = f"http://127.0.0.1:{port}"
        flags = ("--workers", str(workers), "--metrics-listen", f"127.0.0.1:{port}")
        with serve(data_dir, *flags) as s:

            def workers_seen(served=s) -> set[int]:
                return {
                    r["pid"]
                    for r in served.records()
                    if r["logger"] == "medfed.access" and r["path"] == "/graphql"
                }

            s.wait_for_workers(workers)
            sent = pinged(s.url, token, workers, workers_seen)
            refused = 3 * run
            for _ in range(refused):
                assert status(s.url + "/graphql", post=True) == 401
            samples = scrape(metrics_url)
            assert status(s.url + "/metrics") >= 400  # the public listener has none
        assert len(workers_seen()) == workers, "every worker answered pings"
        ping = dict(route="/graphql", operation="Ping", status="200")
        assert value(samples, "medfed_requests_total", **ping) == sent
        assert value(samples, "medfed_request_duration_seconds_count", **ping) == sent
        assert value(samples, "medfed_refusals_total", code="UNAUTHENTICATED") == refused
        unauthenticated = dict(route="/graphql", operation="(none)", status="401")
        assert value(samples, "medfed_requests_total", **unauthenticated) == refused


WORKER = """
import os, sys, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from gateway.telemetry import metrics
metrics.AUDIT_QUEUE.inc(7)  # seven appends waiting when it is killed
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_sigkilled_workers_gauges_leave_the_sum(data_dir):
    """A process writing the server's metrics files (as a worker does) is SIGKILLed, so it
    cannot drop its live gauges itself: its audit-queue depth counts while it runs (the
    control), and is gone from the next scrape, also while it is an unreaped zombie."""
    import asyncio
    import signal
    import subprocess
    import sys

    from tests.support import REPO

    asyncio.run(Federation(data_dir).setup())
    port = free_port()
    with serve(data_dir, "--metrics-listen", f"127.0.0.1:{port}"):
        metrics_url = f"http://127.0.0.1:{port}"
        folder = data_dir / "metrics"
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(folder)], cwd=REPO, stdout=subprocess.PIPE
        )
        try:
            assert worker.stdout.readline().strip() == b"ready"
            assert value(scrape(metrics_url), "medfed_audit_queue_depth") == 7
            assert list(folder.glob(f"gauge_livesum_{worker.pid}.db"))
            worker.send_signal(signal.SIGKILL)
            deadline = time.monotonic() + 10
            while Path(f"/proc/{worker.pid}/stat").read_text().split(") ")[1][0] != "Z":
                assert time.monotonic() < deadline, "the killed worker never became a zombie"
                time.sleep(0.05)
            assert value(scrape(metrics_url), "medfed_audit_queue_depth") == 0
            assert not list(folder.glob(f"gauge_livesum_{worker.pid}.db"))
        finally:
            worker.kill()
            worker.wait()
