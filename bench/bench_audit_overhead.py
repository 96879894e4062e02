"""The full-stack cloud-record query with the audit log on and off: what writing one durable
event per request costs (target: on ÷ off ≤ 1.10 at p50).

Two gateways serve the same demo directory at once, one with ``MEDFED_AUDIT_ENABLED=false``;
the load alternates between them in short blocks (one second each, many rounds), so the
drift of a shared machine (other processes, CPU frequency, a neighbour's I/O), which moves
whole runs by ±20 % here, hits both alike. Samples of each side are pooled.
"""

from __future__ import annotations

import asyncio
import contextlib

from bench.bench_api import _drive
from bench.common import demo_dir, demo_persons, patient_tokens, percentiles, served, table

MODES = {"audit off": "false", "audit on": "true"}
BLOCK_SECONDS = 1.0


def main(args) -> None:
    persons = 2_000 if args.quick else 10_000
    rounds = 3 if args.quick else 8
    data = demo_dir(persons)
    people = patient_tokens(data, demo_persons(data, limit=20))
    rows = []
    with contextlib.ExitStack() as stack:
        bases = {
            mode: stack.enter_context(served(data, extra_env={"MEDFED_AUDIT_ENABLED": flag}))
            for mode, flag in MODES.items()
        }
        for concurrency in (1, 8):
            pooled: dict[str, list[float]] = {mode: [] for mode in MODES}
            rates: dict[str, list[float]] = {mode: [] for mode in MODES}
            for base in bases.values():  # warm caches, pools and the log
                asyncio.run(_drive(base, people, BLOCK_SECONDS, concurrency))
            for _ in range(rounds):
                for mode, base in bases.items():
                    samples, rps = asyncio.run(_drive(base, people, BLOCK_SECONDS, concurrency))
                    pooled[mode] += samples
                    rates[mode].append(rps)
            (off50, off99), (on50, on99) = (percentiles(pooled[m]) for m in MODES)
            off_rps, on_rps = (sum(rates[m]) / len(rates[m]) for m in MODES)
            rows.append(
                [
                    f"{concurrency} client(s)",
                    f"{off50:.2f}",
                    f"{off99:.2f}",
                    f"{on50:.2f}",
                    f"{on99:.2f}",
                    f"{on50 / off50:.2f}",
                    f"{off_rps:.0f} / {on_rps:.0f}",
                ]
            )
    print(
        f"cloud-record query, demo of {persons:,} persons, 1 uvicorn worker per side, "
        f"patient tokens; {rounds} alternating one-second blocks per side"
    )
    table(
        [
            "clients",
            "off p50 ms",
            "off p99 ms",
            "on p50 ms",
            "on p99 ms",
            "on÷off p50",
            "req/s off / on",
        ],
        rows,
    )
