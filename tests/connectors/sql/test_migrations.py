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


async def test_platform_0003_renames_the_demos_retiree_category(make_spec) -> None:
    """Filings written as RETIRED_RESETTLED before platform_0003 read as RELOCATED_RETIREE after
    it; the other categories are left alone."""
    from sqlalchemy import text

    spec = make_spec("platform")
    await migrate.upgrade(spec, "platform_0002")
    engine = create_source_engine(spec)
    insert = text(
        "INSERT INTO filings (filing_id, person_ref, id_number_bidx, name_enc, insuplc_admdvs, "
        "mdtrtarea_admvs, category, channel, status, filed_at, valid_from) VALUES "
        "(:id, 'p', 'b', :blob, '330106', '370000', :category, 'APP', 'ACTIVE', "
        "'2020-01-01 09:00:00', '2020-01-01')"
    )
    categories = "SELECT filing_id, category FROM filings ORDER BY filing_id"
    try:
        async with engine.begin() as conn:
            for fid, category in (("F1", "RETIRED_RESETTLED"), ("F2", "REFERRAL")):
                await conn.execute(insert, {"id": fid, "blob": b"x", "category": category})
        await migrate.upgrade(spec)
        async with engine.connect() as conn:
            rows = (await conn.execute(text(categories))).all()
        assert [tuple(r) for r in rows] == [("F1", "RELOCATED_RETIREE"), ("F2", "REFERRAL")]
    finally:
        await engine.dispose()
