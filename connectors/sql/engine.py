"""Engines for sources: one async engine per source database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors import observe
from connectors.sources import SourceSpec


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    return Path(parsed.database)


def _sqlite_pragmas(busy_timeout_ms: int):
    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the server read while a demo build or a writer runs; NORMAL sync is
        # durable across process crashes in WAL mode.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    return on_connect


def create_engine_for(
    url: str, schema: str | None = None, *, busy_timeout_ms: int = 5000, **kwargs
) -> AsyncEngine:
    """An async engine for ``url``; on PostgreSQL, ``schema`` becomes the search path so the
    same unqualified models and migrations serve every source sharing one database."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout_ms))
        return engine
    connect_args = kwargs.pop("connect_args", {})
    if schema:
        connect_args.setdefault("server_settings", {})["search_path"] = schema
    return create_async_engine(url, connect_args=connect_args, pool_pre_ping=True, **kwargs)


def _counted(*_: object) -> None:
    # SQLAlchemy runs the sync side in a greenlet that shares the task's context, so the
    # running fetch is found (connectors.observe).
    observe.statement()


def create_source_engine(spec: SourceSpec, **kwargs) -> AsyncEngine:
    engine = create_engine_for(spec.url, spec.schema, **kwargs)
    event.listen(engine.sync_engine, "before_cursor_execute", _counted)
    return engine


# A serving gateway waits this long for another writer's lock on a SQLite source: long
# enough for a transaction (milliseconds), short enough that a lock held elsewhere is
# answered as LOCKED within the request's deadline rather than as a timeout.
SERVING_BUSY_TIMEOUT_MS = 2000
