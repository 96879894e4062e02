"""The full-stack cloud-record query with the audit log on and off: what writing one durable
event per request costs (target: on ÷ off ≤ 1.10 at p50).

Both runs serve the same demo directory; only ``MEDFED_AUDIT_ENABLED`` differs. The runs
alternate (off, on, off, on) so drift of the machine affects both alike, and the samples of
each mode are pooled.
"""

from __future__ import annotations

import asyncio

from bench.bench_api import _drive
from bench.common import demo_dir, demo_persons, patient_tokens, percentiles, served, table

MODES = {"audit off": "false", "audit on": "true"}


def main(args) -> None:
    persons = 2_000 if args.quick else 10_000
    seconds = 3.0 if args.quick else 8.0
    rounds = 1 if args.quick else 2
    data = demo_dir(persons)
    people = patient_tokens(data, demo_persons(data, limit=20))
    rows = []
    for concurrency in (1, 8):
        pooled: dict[str, list[float]] = {mode: [] for mode in MODES}
        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(rounds):
            for mode, flag in MODES.items():
                with served(data, extra_env={"MEDFED_AUDIT_ENABLED": flag}) as base:
                    asyncio.run(_drive(base, people, 1.0, concurrency))  # warm caches
                    samples, rps = asyncio.run(_drive(base, people, seconds, concurrency))
                pooled[mode] += samples
                rates[mode].append(rps)
        (off50, off99), (on50, on99) = (percentiles(pooled[m]) for m in MODES)
        off_rps, on_rps = (sum(rates[m]) / len(rates[m]) for m in MODES)
        rows.append([f"{concurrency} client(s)", f"{off50:.2f}", f"{off99:.2f}",
                     f"{on50:.2f}", f"{on99:.2f}", f"{on50 / off50:.2f}",
                     f"{off_rps:.0f} / {on_rps:.0f}"])
    print(f"cloud-record query, demo of {persons:,} persons, 1 uvicorn worker, patient tokens")
    table(["clients", "off p50 ms", "off p99 ms", "on p50 ms", "on p99 ms", "on÷off p50",
           "req/s off / on"], rows)
