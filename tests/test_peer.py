"""Two medfed gateways on 127.0.0.1, one reading the other as a peer source (another
province): the peer's rows join the local answers through the local enforcement point, and
when the peer process stops, answers keep coming with SOURCE_UNAVAILABLE naming it, its
circuit breaker opens in /readyz, and closes again once the peer is back."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.federation import REPO, Federation, make_id_number
from tests.processes import medfed

ID_NUMBER = make_id_number("330106", seq=654)
PEER = "peer-sd"
RECORD = ("query($p: ID!) { person(personId: $p) { name cloudRecord { "
          "visits(first: 50) { nodes { visitId institutionCode diagnosisText } } "
          "testResults { nodes { resultId itemName findings } } "
          "settlements { nodes { settlementId crossProvince total } } } } }")
LIST = ("query($p: ID!) { settlements(filter: {personId: $p}) { nodes { settlementId total } } }")


def _config(base: str, peer_url: str, token_file, cooldown: float = 1.0) -> str:
    return base + f'''
[[sources]]
name = "{PEER}"
kind = "peer"
url = "{peer_url}/graphql"
token_file = "{token_file}"
purpose = "TREATMENT"
timeout_seconds = 2
retries = 1
breaker_failures = 2
breaker_cooldown_seconds = {cooldown}
'''


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    local_dir, peer_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("peer")
    recent = datetime.now() - timedelta(days=1)

    async def populate() -> dict:
        local = await Federation(local_dir).setup()
        # One linkage key across the two gateways: the same person has the same personId.
        shutil.copytree(local_dir / "keys", peer_dir / "keys", dirs_exist_ok=True)
        peer = await Federation(peer_dir).setup()
        ref = await local.add_person(ID_NUMBER, "欧阳远方")
        assert ref == peer.indexer.person_ref(ID_NUMBER)
        await local.add_result(ref, reported_at=recent)  # the local clinician treats
        local_visits = await local.add_visits(ref, 1, with_prescriptions=False)
        await peer.add_person(ID_NUMBER, "欧阳远方", source="bureau-370000", region="370102")
        peer_visits = await peer.add_visits(ref, 2, source="bureau-370000",
                                            institution="H37010200003", insured="370102",
                                            text="外省诊断")
        peer_result = await peer.add_result(ref, source="hospital-h37010200003",
                                            reported_at=recent)  # the connection treats
        peer_settlement = await peer.add_cross_settlement(ref, when=datetime(2021, 3, 1, 9),
                                                          total_fen=88800)
        token = peer.token("clinician", "H37010200003", purposes=["TREATMENT"])
        caller = local.token("clinician", "H33010600001", purposes=["TREATMENT"])
        return dict(ref=ref, local_visits=local_visits, peer_visits=peer_visits,
                    peer_result=peer_result, peer_settlement=peer_settlement, token=token,
                    caller=caller)

    facts = asyncio.run(populate())
    token_file = local_dir / "peer.token"
    token_file.write_text(facts["token"])
    peer = medfed(peer_dir).start()
    config = local_dir / "medfed-peer.toml"
    config.write_text(_config((REPO / "medfed.toml").read_text(), peer.url, token_file))
    local = medfed(local_dir, config=config)
    try:
        local.start()
        yield local, peer, facts
    finally:
        local.stop()
        peer.stop()


def ask(gateway, facts: dict, query: str = RECORD) -> dict:
    response = httpx.post(gateway.url + "/graphql", timeout=30,
                          json={"query": query, "variables": {"p": facts["ref"]}},
                          headers={"Authorization": f"Bearer {facts['caller']}",
                                   "X-Purpose-Of-Use": "TREATMENT"})
    assert response.status_code == 200, response.text
    return response.json()


def peer_state(gateway) -> dict:
    return httpx.get(gateway.url + "/readyz", timeout=10).json()["sources"][PEER]


def test_the_peer_rows_join_the_local_answers(pair):
    local, _peer, facts = pair
    answer = ask(local, facts)
    assert "errors" not in answer, answer
    record = answer["data"]["person"]["cloudRecord"]
    visits = {v["visitId"]: v for v in record["visits"]["nodes"]}
    assert set(visits) == {*facts["local_visits"], *facts["peer_visits"]}
    # Opened by the peer for our connection, then read through our own guard.
    assert visits[facts["peer_visits"][0]]["diagnosisText"] == "外省诊断"
    assert facts["peer_result"] in {r["resultId"] for r in record["testResults"]["nodes"]}
    # A clinician's treatment purpose does not reach settlements, at the peer or here: the
    # peer's policy and ours agree, and the list names no peer settlement either.
    assert facts["peer_settlement"] not in {s["settlementId"]
                                            for s in record["settlements"]["nodes"]}
    listed = ask(local, facts, LIST)
    assert facts["peer_settlement"] not in {
        s["settlementId"] for s in (listed.get("data") or {}).get("settlements", {})
        .get("nodes", [])} if listed.get("data") and listed["data"].get("settlements") else True
    assert peer_state(local)["breaker"] == "closed"


def test_a_stopped_peer_degrades_answers_opens_the_breaker_and_recovers(pair):
    local, peer, facts = pair
    peer.stop()
    for _ in range(4):  # mid-load: every answer still comes, without the peer's rows
        answer = ask(local, facts)
        codes = {(e["extensions"]["code"], e["extensions"].get("source"))
                 for e in answer["errors"]}
        assert codes == {("SOURCE_UNAVAILABLE", PEER)}
        visits = {v["visitId"] for v in answer["data"]["person"]["cloudRecord"]["visits"]
                  ["nodes"]}
        assert visits == set(facts["local_visits"])
    assert peer_state(local)["breaker"] == "open"
    ready = httpx.get(local.url + "/readyz", timeout=10)
    assert ready.status_code == 200  # a remote province down does not unready this gateway

    restarted = medfed(Path(peer.command[peer.command.index("--data-dir") + 1]),
                       port=peer.port)
    restarted.start()
    try:
        recovered = None
        give_up = time.monotonic() + 20  # the cooldown is 1 s; this only bounds a hang
        while time.monotonic() < give_up:
            answer = ask(local, facts)
            if "errors" not in answer:
                recovered = answer
                break
            time.sleep(0.3)
        assert recovered is not None, "the breaker never let the restarted peer back"
        visits = {v["visitId"] for v in recovered["data"]["person"]["cloudRecord"]["visits"]
                  ["nodes"]}
        assert set(facts["peer_visits"]) <= visits
        assert peer_state(local)["breaker"] == "closed"
    finally:
        restarted.stop()
