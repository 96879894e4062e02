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


def medfed(
    *args: str, data_dir: Path, capture: bool = True, env: dict[str, str] | None = None
) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--data-dir", str(data_dir), *args],
        cwd=REPO,
        check=True,
        text=True,
        capture_output=capture,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )
    return result.stdout


def demo_dir(persons: int) -> Path:
    """A demo data directory of ``persons`` persons, built once and reused by later runs."""
    path = CACHE / f"demo-{persons}"
    if not (path / ".demo-built").exists():
        print(f"building the {persons:,}-person demo in {path} (once) ...", flush=True)
        medfed("demo", "build", "--persons", str(persons), "--force", data_dir=path, capture=False)
    # Every database to head (a no-op after): the in-process benches build the app without
    # `medfed serve`, and a demo built before a source migration (an index) needs it too.
    medfed("db", "upgrade", data_dir=path)
    return path


# The PostgreSQL demo: its own database (MEDFED_BENCH_PG_URL names another), a schema per
# source as in production (docs/production.md).
PG_URL = os.environ.get(
    "MEDFED_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/medfed_bench"
)


def pg_env() -> dict[str, str]:
    return {"MEDFED_DATABASE_URL": PG_URL}


def pg_problem() -> str | None:
    """Why the PostgreSQL demo cannot be used, or None; creates its database if missing."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)

    async def ensure() -> None:
        admin = url.set(drivername="postgresql", database="postgres")
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=3)
        try:
            found = await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", url.database
            )
            if not found:
                await conn.execute(f'CREATE DATABASE "{url.database}"')
        finally:
            await conn.close()

    try:
        asyncio.run(ensure())
    except Exception as exc:  # any failure to connect: the PostgreSQL rows are skipped
        return f"PostgreSQL at {url.render_as_string()} does not answer: {exc!r}"
    return None


def pg_demo_dir(persons: int) -> Path:
    """The ``persons`` demo written into PostgreSQL (keys and the marker in a data directory
    of its own), built once per database URL."""
    path = CACHE / f"demo-pg-{persons}"
    stamp = path / "pg-url"
    built = (path / ".demo-built").exists() and stamp.exists()
    if not built or stamp.read_text(encoding="utf-8") != PG_URL:
        print(f"building the {persons:,}-person demo in PostgreSQL (once) ...", flush=True)
        medfed("db", "upgrade", data_dir=path, env=pg_env())
        medfed(
            "demo",
            "build",
            "--persons",
            str(persons),
            "--force",
            data_dir=path,
            capture=False,
            env=pg_env(),
        )
        stamp.write_text(PG_URL, encoding="utf-8")
    medfed("db", "upgrade", data_dir=path, env=pg_env())
    return path


def demo_persons(data_dir: Path, limit: int = 8, env: dict[str, str] | None = None) -> list[dict]:
    out = medfed("demo", "show", "--limit", str(limit), data_dir=data_dir, env=env)
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


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and every live descendant
    (uvicorn workers, audit writer processes), from /proc; 0 where /proc is missing."""
    stats: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += stats.get(current, (0, 0.0))[1]
        todo += [child for child, (parent, _) in stats.items() if parent == current]
    return total


@contextlib.contextmanager
def served(
    data_dir: Path,
    *,
    workers: int = 1,
    extra_env: dict | None = None,
    pid_out: list[int] | None = None,
    config: Path | None = None,
) -> Iterator[str]:
    """``medfed serve`` on a free loopback port (with ``config``, else the bench
    configuration); yields its base URL, stops it afterwards (``pid_out`` receives the
    server's process id, for ``tree_cpu``)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), **(extra_env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(config or bench_config()),
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
    if pid_out is not None:
        pid_out.append(proc.pid)
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


class AsgiCaller:
    """POSTs to an ASGI app in this process without a client library in between, so the
    CPU a request costs is the server's (httpx's ASGI transport costs about as much as a
    small GraphQL request)."""

    def __init__(self, app, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        import asyncio

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"bench.test"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *((k.lower().encode(), v.encode()) for k, v in headers.items()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("bench.test", 80),
        }
        done = asyncio.Event()
        delivered = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()  # as a client that stays connected until the answer is in
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        await self.app(scope, receive, send)
        return status, b"".join(chunks)
