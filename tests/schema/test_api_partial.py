"""One dead or slow source: the others still answer, and the response names the missing one."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

import asyncpg
import pytest

from gateway.app import build_services
from tests.support.federation import Federation, gql, make_id_number
from tests.support.postgres import PG_URL, pg_unavailable

QUERY = """query($id: ID!) { testResults(personId: $id, first: 50) {
  nodes { resultId performingInstitutionCode } } }"""


def _swap_source(fed: Federation, name: str, **changes) -> None:
    sources = tuple(
        dataclasses.replace(s, **changes) if s.name == name else s for s in fed.settings.sources
    )
    fed.settings = dataclasses.replace(fed.settings, sources=sources)


async def test_dead_source_gives_partial_data_and_a_named_error(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(), "张三")
    kept = await fed.add_result(ref)
    await fed.add_result(ref, source="hospital-h37010200003")
    # The Jinan hospital's database now points at a port where nothing listens.
    _swap_source(
        fed,
        "hospital-h37010200003",
        url="postgresql+asyncpg://postgres@127.0.0.1:1/none",
        schema=None,
    )
    app = fed.app()
    async with fed.client(app, fed.token("patient", "330106", person=ref)) as c:
        response = await c.post("/graphql", json={"query": QUERY, "variables": {"id": ref}})
    assert response.status_code == 200
    body = response.json()
    assert [n["resultId"] for n in body["data"]["testResults"]["nodes"]] == [kept]
    (error,) = body["errors"]
    assert error["extensions"] == {
        "code": "SOURCE_UNAVAILABLE",
        "source": "hospital-h37010200003",
        "reason": "UNREACHABLE",  # a stable reason, never the driver's exception class
    }
    assert error["path"] == ["testResults"]


async def test_slow_source_is_cut_at_the_deadline(data_dir):
    if problem := pg_unavailable():
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    fed = Federation(data_dir)
    _swap_source(fed, "hospital-h37010200003", url=PG_URL, schema=schema)
    await fed.setup()
    ref = await fed.add_person(make_id_number(), "张三")
    kept = await fed.add_result(ref, reported_at=datetime(2026, 11, 1))
    services = build_services(fed.settings)
    services.deadline_seconds = 0.5
    app = fed.app(services)
    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    locker = await asyncpg.connect(dsn)
    try:
        # Hold an exclusive lock so the source's SELECT waits: a slow source, for real. The
        # lock is released only after the answer, so an answer at all proves the deadline.
        tx = locker.transaction()
        await tx.start()
        await locker.execute(f'LOCK TABLE "{schema}".test_results IN ACCESS EXCLUSIVE MODE')
        async with fed.client(app, fed.token("patient", "330106", person=ref)) as c:
            body = await gql(c, QUERY, {"id": ref})
        await tx.rollback()
    finally:
        await locker.close()
        cleanup = await asyncpg.connect(dsn)
        await cleanup.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await cleanup.close()
        await services.registry.dispose()
    assert [n["resultId"] for n in body["data"]["testResults"]["nodes"]] == [kept]
    (error,) = body["errors"]
    assert error["extensions"]["source"] == "hospital-h37010200003"
    assert error["extensions"]["reason"] == "DEADLINE_EXCEEDED"
    assert "DEADLINE_EXCEEDED" in error["message"]
