"""Demo build throughput and memory: ``medfed demo build`` at two sizes, each in a fresh data
directory and a process of its own, so the figures are what a user's build costs."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """The process and its children (the generator workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(c) for c in children)]


def run_build(persons: int) -> tuple[float, float, float]:
    """(seconds, peak MiB of the largest process, peak MiB of all its processes together)."""
    with tempfile.TemporaryDirectory(prefix="medfed-bench-") as tmp:
        command = [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(REPO / "medfed.toml"),
            "--data-dir",
            str(Path(tmp) / "data"),
            "demo",
            "build",
            "--persons",
            str(persons),
            "--quiet",
        ]
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
        largest = total = 0
        while proc.poll() is None:
            sizes = [_rss_kib(p) for p in _tree(proc.pid)]
            largest, total = max(largest, *sizes), max(total, sum(sizes))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"demo build of {persons} persons failed ({proc.returncode})")
    return seconds, largest / 1024, total / 1024


def main(args) -> None:
    sizes = (1_000, 5_000) if getattr(args, "quick", False) else (10_000, 100_000)
    print(
        f"{'persons':>9} {'seconds':>8} {'persons/s':>10} {'peak MiB (largest)':>19} "
        f"{'peak MiB (all procs)':>21}",
        flush=True,
    )
    for persons in sizes:
        seconds, largest, total = run_build(persons)
        print(
            f"{persons:>9,} {seconds:>8.1f} {persons / seconds:>10.0f} {largest:>19.0f} "
            f"{total:>21.0f}",
            flush=True,
        )
