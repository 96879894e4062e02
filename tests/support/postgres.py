"""The PostgreSQL server the tests use (127.0.0.1:5432, database ``test``; override with
``MEDFED_TEST_PG_URL``), checked once per run."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os

PG_URL = os.environ.get("MEDFED_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def pg_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_sync(coro):
    # A thread of its own, so this works from inside a running event loop (async tests) too.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


_pg_problem: list[str | None] = []


def pg_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or ``None`` if it answers (checked once per run)."""
    if not _pg_problem:
        try:
            run_sync(pg_execute("SELECT 1"))
            _pg_problem.append(None)
        except Exception as exc:  # any failure to connect means: skip, and say why
            _pg_problem.append(f"PostgreSQL at {PG_URL} does not answer: {exc!r}")
    return _pg_problem[0]


class Throwaway:
    """A PostgreSQL server of the test's own (``initdb`` + ``pg_ctl`` on a free port, trust
    auth, data in a temporary folder), so a test may stop, restart and break it without
    touching the shared server. ``missing()`` says why it cannot run here."""

    def __init__(self) -> None:
        import glob
        import shutil
        import tempfile
        from pathlib import Path

        from tests.support.processes import free_port

        # Not under pytest's tmp_path: that is private to root, and initdb runs as postgres.
        folder = tempfile.mkdtemp(prefix="medfed-pg-")

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = found[-1] if found else shutil.which("initdb")
        self.bin = Path(initdb).parent if initdb else None
        self.folder = Path(folder)
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/medfed"

    def missing(self) -> str | None:
        import os

        if self.bin is None or not (self.bin / "pg_ctl").exists():
            return "no initdb/pg_ctl in /usr/lib/postgresql/*/bin or on PATH"
        if os.geteuid() == 0:
            # initdb refuses to run as root; run it as the owner of the binaries if we can.
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and no postgres user to run initdb as"
        return None

    def _run(self, *args: str, check: bool = True):
        import os
        import subprocess

        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> Throwaway:
        import os
        import shutil

        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "medfed")
        return self

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.folder / "pg.log"),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
            " -c fsync=on -c max_connections=60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", mode, "stop", check=False)

    def remove(self) -> None:
        import shutil

        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def sql(self, statement: str, database: str = "medfed") -> str:
        done = self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            statement,
        )
        return done.stdout
