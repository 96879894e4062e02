"""Run the benchmarks: ``python -m bench [FILTER ...] [--quick]``."""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from pathlib import Path


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("filters", nargs="*", help="run only benchmarks whose name contains one")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    if args.filters:
        names = [n for n in names if any(f in n for f in args.filters)]
    print(f"# medfed benchmarks on {machine()}", flush=True)
    for name in names:
        started = time.perf_counter()
        print(f"\n## {name.removeprefix('bench_')}", flush=True)
        importlib.import_module(f"bench.{name}").main(args)
        print(f"({time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
