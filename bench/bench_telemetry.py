"""The full-stack cloud-record query with telemetry on and off (target: on ÷ off ≤ 1.05,
with the exporter batching), as server CPU time per request and as latency.

"Off" is the default configuration: JSON logs and the Prometheus counters (always on) and
the OpenTelemetry API's no-op tracer. "On" adds what an operator turns on: traces exported
over OTLP/HTTP through the batching span processor to a collector (here a sink on loopback
that reads each export and answers 200, so the protobuf encoding and the HTTP export are
real), with the SQL statement spans, and ``/metrics`` served and scraped once a second.
All three gateways (off, on with every trace, on with 10 % of traces sampled) serve the same
demo directory at once; the load alternates between them in
one-second blocks over many rounds so a shared machine's drift hits both alike. The first
figure is each server's CPU time (user + system of its process tree, from /proc) per request, which
the other tenants of a shared machine move far less than latency; the exporter's thread
runs in that process, so its work is counted. Latencies are printed beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from bench.bench_api import _drive
from bench.common import (
    BENCH_CONFIG,
    bench_config,
    demo_dir,
    demo_persons,
    free_port,
    patient_tokens,
    percentiles,
    served,
    table,
    tree_cpu,
)

BLOCK_SECONDS = 1.0


class _Sink(BaseHTTPRequestHandler):
    spans_bytes = 0

    def do_POST(self) -> None:  # an OTLP/HTTP collector's answer: 200, empty body
        length = int(self.headers.get("content-length") or 0)
        _Sink.spans_bytes += len(self.rfile.read(length))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args) -> None:
        return None


@contextlib.contextmanager
def collector():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def scraping(url: str):
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(1.0):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(url, timeout=5)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def main(args) -> None:
    persons = 2_000 if args.quick else 10_000
    rounds = 3 if args.quick else 10
    data = demo_dir(persons)
    people = patient_tokens(data, demo_persons(data, limit=20))
    rows = []
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(collector())
        metrics_port = free_port()
        configs = {}
        for mode, ratio in (("on, every trace", 1.0), ("on, 10 % sampled", 0.1)):
            path = BENCH_CONFIG.with_name(f"bench-telemetry-{int(ratio * 100)}.toml")
            path.write_text(
                bench_config().read_text(encoding="utf-8")
                + f'\n[telemetry]\ntraces = "otlp"\notlp_endpoint = "{endpoint}"\n'
                f"sample_ratio = {ratio}\n"
                + (f'metrics_listen = "127.0.0.1:{metrics_port}"\n' if ratio == 1.0 else ""),
                encoding="utf-8",
            )
            configs[mode] = path
        modes = ["off", *configs]
        pids: dict[str, list[int]] = {mode: [] for mode in modes}
        bases = {
            mode: stack.enter_context(served(data, config=configs.get(mode), pid_out=pids[mode]))
            for mode in modes
        }
        stack.enter_context(scraping(f"http://127.0.0.1:{metrics_port}/metrics"))
        for concurrency in (1, 8):
            pooled: dict[str, list[float]] = {mode: [] for mode in modes}
            cpu: dict[str, float] = dict.fromkeys(modes, 0.0)
            count: dict[str, int] = dict.fromkeys(modes, 0)
            ratios: dict[str, list[float]] = {mode: [] for mode in configs}
            for base in bases.values():  # warm caches, pools and the exporter
                asyncio.run(_drive(base, people, BLOCK_SECONDS, concurrency))
            for _ in range(rounds):
                per_request = {}
                for mode, base in bases.items():
                    before = tree_cpu(pids[mode][0])
                    samples, _rps = asyncio.run(_drive(base, people, BLOCK_SECONDS, concurrency))
                    used = tree_cpu(pids[mode][0]) - before
                    pooled[mode] += samples
                    cpu[mode] += used
                    count[mode] += len(samples)
                    per_request[mode] = used / len(samples)
                for mode in configs:
                    ratios[mode].append(per_request[mode] / per_request["off"])
            off_cpu = cpu["off"] / count["off"] * 1000
            off50 = percentiles(pooled["off"])[0]
            for mode in configs:
                on_cpu = cpu[mode] / count[mode] * 1000
                spread = sorted(ratios[mode])
                rows.append(
                    [
                        f"{concurrency} client(s)",
                        mode,
                        f"{off_cpu:.2f}",
                        f"{on_cpu:.2f}",
                        f"{on_cpu / off_cpu:.3f}",
                        f"{spread[0]:.2f}-{spread[len(spread) // 2]:.2f}-{spread[-1]:.2f}",
                        f"{off50:.1f} / {percentiles(pooled[mode])[0]:.1f}",
                        f"{count['off']} / {count[mode]}",
                    ]
                )
    print(
        f"cloud-record query, demo of {persons:,} persons, 1 uvicorn worker per side, patient "
        f"tokens; {rounds} alternating one-second blocks per side; "
        f"{_Sink.spans_bytes / 1e6:.1f} MB of OTLP received"
    )
    table(
        [
            "clients",
            "telemetry",
            "CPU ms/req off",
            "CPU ms/req on",
            "on÷off CPU",
            "per round min-median-max",
            "p50 ms off / on",
            "requests off / on",
        ],
        rows,
    )
