"""Real processes on loopback for the federation tests: medfed gateways and subgraphs, and
Hive Gateway. Nothing here is mocked; every process is stopped by its own handle."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import REPO

HIVE = REPO / "node_modules" / ".bin" / "hive-gateway"


def router_missing() -> str | None:
    """Why the router tests cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed: the router tests need Node 20+ and `npm ci`"
    if not HIVE.exists():
        return "node_modules is missing: run `make install` (npm ci) for Hive Gateway"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(
        self,
        command: list[str],
        port: int,
        log: Path,
        ready_path: str,
        *,
        scheme: str = "http",
        verify: ssl.SSLContext | bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command, self.port, self.log, self.ready_path = command, port, log, ready_path
        self.env = env or {}  # on top of this process's environment
        # For an HTTPS process, `verify` trusts its CA (and presents a client certificate
        # when the process requires one), so the readiness probe speaks its TLS.
        self.scheme, self.verify = scheme, verify
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 40.0) -> Process:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.command,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command[:4]} exited: {self.log.read_text()[-2000:]}")
            try:
                if (
                    httpx.get(self.url + self.ready_path, timeout=1, verify=self.verify).status_code
                    < 500
                ):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.command[:4]} not ready: {self.log.read_text()[-2000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def children(self) -> list[int]:
        """Pids of this process's children (the SQLite audit writer, for one)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def kill9(self) -> None:
        """kill -9, and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve_command(data_dir: Path, port: int, *flags: str, config: Path | None = None) -> list[str]:
    """``medfed serve`` of ``data_dir`` on 127.0.0.1:``port`` with ``config`` (the
    repository's medfed.toml by default)."""
    return [
        sys.executable,
        "-m",
        "gateway.cli",
        "--config",
        str(config or REPO / "medfed.toml"),
        "--data-dir",
        str(data_dir),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *flags,
    ]


def medfed(
    data_dir: Path,
    *extra: str,
    port: int | None = None,
    config: Path | None = None,
    verify: ssl.SSLContext | bool = True,
    env: dict[str, str] | None = None,
) -> Process:
    """``extra`` are ``serve`` flags; with ``--tls-cert`` the process is reached over HTTPS."""
    port = port or free_port()
    tls = "--tls-cert" in extra
    # TLS flags carry paths, which cannot be part of a log's name: they go last.
    plain = extra[
        : min((i for i, e in enumerate(extra) if e.startswith("--tls")), default=len(extra))
    ]
    name = "-".join(plain).replace("--", "") or ("tls" if tls else "merged")
    return Process(
        serve_command(data_dir, port, *extra, config=config),
        port,
        data_dir / f"{name}.log",
        "/healthz",
        scheme="https" if tls else "http",
        verify=verify,
        env=env,
    )


def hive_gateway(supergraph: Path, log: Path) -> Process:
    port = free_port()
    command = [
        str(HIVE),
        "supergraph",
        str(supergraph),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config-path",
        str(REPO / "tools" / "gateway.config.mjs"),
    ]
    return Process(command, port, log, "/healthcheck")
