"""Two medfed gateways on 127.0.0.1, one reading the other as a peer source (another
province): the peer's rows join the local answers through the local enforcement point, and
when the peer process stops, answers keep coming with SOURCE_UNAVAILABLE naming it, its
circuit breaker opens in /readyz, and closes again once the peer is back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.federation import REPO
from tests.support.peer import LIST, PEER, ask, peer_source, populate
from tests.support.processes import medfed


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    local_dir, peer_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("peer")
    facts = populate(local_dir, peer_dir)
    token_file = local_dir / "peer.token"
    token_file.write_text(facts["token"])
    peer = medfed(peer_dir).start()
    config = local_dir / "medfed-peer.toml"
    config.write_text((REPO / "medfed.toml").read_text() + peer_source(peer.url, token_file))
    local = medfed(local_dir, config=config)
    try:
        local.start()
        yield local, peer, facts
    finally:
        local.stop()
        peer.stop()


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
    assert facts["peer_settlement"] not in {
        s["settlementId"] for s in record["settlements"]["nodes"]
    }
    listed = ask(local, facts, LIST)
    assert (
        facts["peer_settlement"]
        not in {
            s["settlementId"]
            for s in (listed.get("data") or {}).get("settlements", {}).get("nodes", [])
        }
        if listed.get("data") and listed["data"].get("settlements")
        else True
    )
    assert peer_state(local)["breaker"] == "closed"


def test_a_stopped_peer_degrades_answers_opens_the_breaker_and_recovers(pair):
    local, peer, facts = pair
    peer.stop()
    for _ in range(4):  # mid-load: every answer still comes, without the peer's rows
        answer = ask(local, facts)
        codes = {(e["extensions"]["code"], e["extensions"].get("source")) for e in answer["errors"]}
        assert codes == {("SOURCE_UNAVAILABLE", PEER)}
        visits = {v["visitId"] for v in answer["data"]["person"]["cloudRecord"]["visits"]["nodes"]}
        assert visits == set(facts["local_visits"])
    # Opened; under load its 1 s cooldown may already have passed (half-open follows only open).
    assert peer_state(local)["breaker"] in {"open", "half-open"}
    ready = httpx.get(local.url + "/readyz", timeout=10)
    assert ready.status_code == 200  # a remote province down does not unready this gateway

    restarted = medfed(Path(peer.command[peer.command.index("--data-dir") + 1]), port=peer.port)
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
        visits = {
            v["visitId"] for v in recovered["data"]["person"]["cloudRecord"]["visits"]["nodes"]
        }
        assert set(facts["peer_visits"]) <= visits
        assert peer_state(local)["breaker"] == "closed"
    finally:
        restarted.stop()
