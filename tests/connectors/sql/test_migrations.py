"""Every source kind migrates up to head and back down to empty, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from connectors.sql.models import METADATA_BY_KIND, SOURCE_KINDS


async def _tables(spec) -> set[str]:
    engine = create_source_engine(spec)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", SOURCE_KINDS)
async def test_upgrade_then_downgrade(make_spec, kind: str) -> None:
    spec = make_spec(kind)
    assert await migrate.current(spec) is None

    await migrate.upgrade(spec)
    assert await migrate.current(spec) == migrate.head_of(kind)
    expected = set(METADATA_BY_KIND[kind].tables)
    assert expected <= await _tables(spec)

    await migrate.downgrade(spec)
    assert await migrate.current(spec) is None
    assert not (expected & await _tables(spec))


async def test_migrations_match_models(make_spec) -> None:
    """The migrations create exactly what the models declare: nothing for autogenerate to add."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    for kind in SOURCE_KINDS:
        spec = make_spec(kind)
        await migrate.upgrade(spec)
        engine = create_source_engine(spec)
        try:
            async with engine.connect() as conn:
                diff = await conn.run_sync(
                    lambda c, k=kind: compare_metadata(
                        MigrationContext.configure(c), METADATA_BY_KIND[k]
                    )
                )
        finally:
            await engine.dispose()
        assert diff == [], f"{kind}: models and migrations differ: {diff}"
