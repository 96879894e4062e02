"""A ``medfed serve`` process on loopback whose standard error is kept apart from its
standard output, for the telemetry tests that read every line a process logs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support import REPO
from tests.support.processes import free_port, serve_command


class Served:
    def __init__(self, proc: subprocess.Popen, url: str, stderr: Path) -> None:
        self.proc, self.url, self.stderr = proc, url, stderr

    def lines(self) -> list[str]:
        return [line for line in self.stderr.read_text(encoding="utf-8").splitlines() if line]

    def records(self) -> list[dict]:
        """Every standard-error line as JSON (a line that is not JSON raises)."""
        return [json.loads(line) for line in self.lines()]

    def wait_for_workers(self, count: int, timeout: float = 90.0) -> None:
        """Until ``count`` processes have finished starting (a loaded machine is slow)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [r for r in self.records() if r["message"] == "Application startup complete."]
            if len({r["pid"] for r in done}) >= count:
                return
            time.sleep(0.3)
        raise AssertionError(f"{count} workers did not start: {self.lines()[-5:]}")


@contextlib.contextmanager
def serve(
    data_dir: Path,
    *flags: str,
    env: dict[str, str] | None = None,
    config: Path | None = None,
    timeout: float = 60.0,
) -> Iterator[Served]:
    """Serves ``data_dir`` with ``config`` (the repository's medfed.toml by default) until
    the block ends; the process is stopped (SIGTERM, then SIGKILL) by its own handle."""
    port = free_port()
    stderr = data_dir / f"serve-{port}.stderr"
    command = serve_command(data_dir, port, *flags, config=config)
    with stderr.open("wb") as err, (data_dir / f"serve-{port}.stdout").open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=out,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    served = Served(proc, f"http://127.0.0.1:{port}", stderr)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"medfed serve exited: {stderr.read_text()[-2000:]}")
            try:
                if httpx.get(served.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"medfed serve not ready: {stderr.read_text()[-2000:]}")
            time.sleep(0.2)
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
