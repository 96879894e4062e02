"""Shared bench helpers: a demo data directory built once, a served gateway, latency stats."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / "results"
# The edge's per-principal rate limits (on by default) would throttle the load generator and
# measure the limiter instead of the gateway, so every served bench runs with them off.
BENCH_CONFIG = CACHE / "medfed-bench.toml"


def bench_config() -> Path:
    """``medfed.toml`` plus ``[limits] rate_limits = false``, rewritten so it follows edits."""
    base = (REPO / "medfed.toml").read_text(encoding="utf-8")
    text = base.rstrip("\n") + "\n\n[limits]\nrate_limits = false\n"
    CACHE.mkdir(parents=True, exist_ok=True)
    if not BENCH_CONFIG.exists() or BENCH_CONFIG.read_text(encoding="utf-8") != text:
        BENCH_CONFIG.write_text(text, encoding="utf-8")
    return BENCH_CONFIG


def medfed(*args: str, data_dir: Path, capture: bool = True) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--data-dir", str(data_dir), *args],
        cwd=REPO,
        check=True,
        text=True,
        capture_output=capture,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return result.stdout


def demo_dir(persons: int) -> Path:
    """A demo data directory of ``persons`` persons, built once and reused by later runs."""
    path = CACHE / f"demo-{persons}"
    if not (path / ".demo-built").exists():
        print(f"building the {persons:,}-person demo in {path} (once) ...", flush=True)
        medfed("demo", "build", "--persons", str(persons), "--force", data_dir=path, capture=False)
    # The gateway's own database (audit log, consents) is migrated by `medfed serve`; the
    # in-process benches build the app without it, so bring it to head here (a no-op after).
    medfed("db", "upgrade", "--source", "gateway", data_dir=path)
    return path


def demo_persons(data_dir: Path, limit: int = 8) -> list[dict]:
    out = medfed("demo", "show", "--limit", str(limit), data_dir=data_dir)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def patient_tokens(data_dir: Path, people: list[dict]) -> list[tuple[str, str]]:
    """(personId, patient token) pairs from the demo issuer, two hours valid."""
    from security.identity import open_demo_issuer

    issuer = open_demo_issuer(data_dir)
    return [
        (
            p["personId"],
            issuer.mint(role="patient", org="330000", person=p["personId"], ttl_seconds=7200),
        )
        for p in people
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served(data_dir: Path, *, workers: int = 1, extra_env: dict | None = None) -> Iterator[str]:
    """``medfed serve`` on a free loopback port; yields its base URL, stops it afterwards."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), **(extra_env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(bench_config()),
            "--data-dir",
            str(data_dir),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the gateway did not start")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def table(headers: list[str], rows: list[list]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)) + " |")


def allow_all(_principal, _purpose, _type: str, _field: str, _relation):
    """A decider that allows every field: the baseline the policy's cost is measured against.
    It lives here, not in ``security``, so no production path can fall back to it."""
    from security.enforcement import Decision

    return Decision.ALLOW, "allowed (benchmark baseline)"
