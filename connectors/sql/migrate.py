"""Bring a source database to the head of its kind's migration branch (or back down)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from connectors.sources import SourceSpec
from connectors.sql.engine import create_source_engine
from connectors.sql.models import SOURCE_KINDS

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(kind: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option(
        "version_locations", " ".join(str(MIGRATIONS / k) for k in (*SOURCE_KINDS, "gateway"))
    )
    cfg.attributes["kind"] = kind
    return cfg


def head_of(kind: str) -> str:
    script = ScriptDirectory.from_config(alembic_config(kind))
    (head,) = script.get_revisions(f"{kind}@head")
    return head.revision


async def _run(spec: SourceSpec, action) -> None:
    engine = create_source_engine(spec)
    try:
        async with engine.begin() as conn:
            if spec.schema and not spec.is_sqlite:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{spec.schema}"'))

            def run(sync_conn) -> None:
                cfg = alembic_config(spec.kind)
                cfg.attributes["connection"] = sync_conn
                action(cfg)

            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def upgrade(spec: SourceSpec, revision: str = "head") -> None:
    target = f"{spec.kind}@{revision}" if "@" not in revision else revision
    await _run(spec, lambda cfg: command.upgrade(cfg, target))


async def downgrade(spec: SourceSpec, revision: str = "base") -> None:
    target = f"{spec.kind}@{revision}" if "@" not in revision else revision
    await _run(spec, lambda cfg: command.downgrade(cfg, target))


async def current(spec: SourceSpec) -> str | None:
    """The revision the source's database is at, or ``None`` if it was never migrated."""
    engine = create_source_engine(spec)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
            )
    finally:
        await engine.dispose()
