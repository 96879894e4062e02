"""Opening an audit log on a test database, reading its entries, and appender processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
from sqlalchemy import select

from connectors.sources import SourceSpec
from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from security.audit import AuditLogConfig, open_audit_log
from security.audit.models import AuditEvent
from tests.support import REPO

ORIGIN = "medfed.local/audit"
# The largest checkpoint_every the settings accept: no checkpoint is due by count in a test
# of a few events (0, which used to mean this, is refused since [audit] is checked strictly).
NO_COUNT_CHECKPOINT = 100_000


def sqlite_spec(data_dir: Path) -> SourceSpec:
    return SourceSpec(
        name="gateway", kind="gateway", url=f"sqlite+aiosqlite:///{data_dir.as_posix()}/gateway.db"
    )


async def open_log(spec: SourceSpec, data_dir: Path, **config):
    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    return engine, open_audit_log(engine, data_dir / "keys", AuditLogConfig(**config))


async def read_entries(engine) -> list[dict]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(AuditEvent.idx, AuditEvent.entry).order_by(AuditEvent.idx))
        return [orjson.loads(r.entry) | {"idx": r.idx} for r in rows]


def appender(url: str, keys: Path, tag: str, count: int, schema: str | None = None):
    module = "tests.support.audit_appender"
    command = [sys.executable, "-m", module, url, str(keys), tag, str(count)]
    if schema:
        command += ["--schema", schema]
    return subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
