"""The demo on PostgreSQL: same logical content as on SQLite, and ``demo show`` reads it."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import func, select

from connectors.demo import build, show
from connectors.demo.writer import SourceWriter
from connectors.sql.engine import create_source_engine
from connectors.sql.models import bureau
from gateway.config import load_settings
from gateway.startup import open_keyring
from security.crypto import FieldCipher
from tests.support.demo import CONFIG
from tests.support.demo import build as build_sqlite

PERSONS, SEED = 60, 11


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
async def test_demo_on_postgres_matches_sqlite_and_shows(make_spec, data_dir, tmp_path) -> None:
    base = load_settings(CONFIG, data_dir=data_dir, env={})
    specs = [
        make_spec(s.kind, s.name, region=s.region, institution=s.institution) for s in base.sources
    ]
    settings = dataclasses.replace(base, sources=tuple(specs))
    await build.migrate_all(specs)
    keyring = open_keyring(settings, create=True)
    for spec in specs:
        keyring.ensure_source(spec.name)
    report = await build.build(specs, keyring, data_dir, persons=PERSONS, seed=SEED, progress=False)

    # The command line runs its own event loop, so it gets a thread of its own here.
    on_sqlite = await asyncio.to_thread(build_sqlite, tmp_path / "sqlite", PERSONS, SEED)
    assert report.content_hash == on_sqlite["contentHash"]
    assert report.counts == on_sqlite["counts"]

    writer = SourceWriter(specs)
    try:
        assert set(await writer.sources_with_rows()) == {s.name for s in specs}
        assert await writer.count("platform", "clearings") == report.counts["platform"]["clearings"]
    finally:
        await writer.close()

    people = await show.interesting_persons(specs, keyring, limit=4)
    assert len(people) == 4
    cipher = FieldCipher(keyring)
    spec = next(s for s in specs if s.name == "bureau-330000")
    engine = create_source_engine(spec)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(bureau.Person).limit(1))).first()
            assert await conn.scalar(select(func.count()).select_from(bureau.Person)) > 0
    finally:
        await engine.dispose()
    assert cipher.decrypt(
        row.name_enc, source=spec.name, table="persons", column="name_enc", row_key=row.psn_no
    )
    for person in people:
        assert person["idNumber"] and person["name"] and person["interesting"]
