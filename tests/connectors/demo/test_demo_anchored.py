"""The demo's rows are anchored in the records log by ``medfed demo build``: they read
``integrity: VERIFIED`` like the mutations' rows, ``medfed records verify`` checks every one
at its source, and a demo row changed at its source is then named CHANGED."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import httpx
import pytest

from connectors.sql import anchoring
from gateway.app import build_services, create_app
from gateway.config import load_settings
from security.identity import ensure_demo_issuer
from tests.support.demo import BUREAUS, CONFIG, build, db, medfed

QUERY = """{ me { cloudRecord { settlements(first: 5) { nodes { settlementId integrity } } } } }"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("anchored") / "data"
    build(path, 120)
    return path


def _verify(demo, capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = medfed(demo, "records", "verify", "--json")
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _anchorable(demo) -> int:
    total = 0
    for source in (demo / "sources").glob("*.db"):
        conn = sqlite3.connect(source)
        try:
            names = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            for kind in set(anchoring.ANCHORED) & names:
                total += conn.execute(f"SELECT count(*) FROM {kind}").fetchone()[0]
        finally:
            conn.close()
    return total


async def _integrity(demo, person: str) -> list[str]:
    settings = load_settings(CONFIG, data_dir=demo, env={})
    app = create_app(settings, build_services(settings))
    token = ensure_demo_issuer(demo).mint(role="patient", org="330000", person=person)
    headers = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "PATIENT_ACCESS"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        body = (await c.post("/graphql", json={"query": QUERY}, headers=headers)).json()
    nodes = body["data"]["me"]["cloudRecord"]["settlements"]["nodes"]
    return [n["integrity"] for n in nodes]


def test_demo_records_are_anchored_verified_and_checked_at_their_sources(demo, capsys):
    code, report = _verify(demo, capsys)
    assert code == 0 and report["logValid"], report
    assert report["records"] == _anchorable(demo) > 1000
    assert report["changed"] == [] and report["missing"] == []

    conn = db(demo, BUREAUS[0])
    try:
        person, setl_id = conn.execute(
            "SELECT person_ref, setl_id FROM settlements ORDER BY setl_id LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    assert set(asyncio.run(_integrity(demo, person))) == {"VERIFIED"}

    conn = db(demo, BUREAUS[0])
    try:
        conn.execute(
            "UPDATE settlements SET total_fen = total_fen + 1 WHERE setl_id = ?", (setl_id,)
        )
        conn.commit()
    finally:
        conn.close()
    code, report = _verify(demo, capsys)
    assert code == 1 and report["logValid"]  # the log is intact; the row is not
    assert report["changed"] == [["settlements", BUREAUS[0], setl_id]]
    assert "CHANGED" in asyncio.run(_integrity(demo, person))
