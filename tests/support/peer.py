"""The two-province data set shared by the peer tests (plain HTTP and TLS): one person known
to both gateways under the same linkage key, visits and a result on each side, and the
tokens of the local caller and of the peer connection."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from tests.support.federation import RECENT_VISIT, Federation, make_id_number

ID_NUMBER = make_id_number("330106", seq=654)
PEER = "peer-sd"
RECORD = (
    "query($p: ID!) { person(personId: $p) { name cloudRecord { "
    "visits(first: 50) { nodes { visitId institutionCode diagnosisText } } "
    "testResults { nodes { resultId itemName findings } } "
    "settlements { nodes { settlementId crossProvince total } } } } }"
)
LIST = "query($p: ID!) { settlements(filter: {personId: $p}) { nodes { settlementId total } } }"


def peer_source(
    peer_url: str,
    token_file: Path,
    *,
    name: str = PEER,
    cooldown: float = 1.0,
    tls: dict[str, Path] | None = None,
) -> str:
    """One ``[[sources]] kind = "peer"`` table; ``tls`` adds ca_file/client_cert/client_key."""
    lines = "".join(f'{key} = "{path}"\n' for key, path in (tls or {}).items())
    return f'''
[[sources]]
name = "{name}"
kind = "peer"
url = "{peer_url}/graphql"
token_file = "{token_file}"
purpose = "TREATMENT"
timeout_seconds = 2
retries = 1
breaker_failures = 2
breaker_cooldown_seconds = {cooldown}
{lines}'''


def populate(local_dir: Path, peer_dir: Path) -> dict:
    """Seed both gateways' databases; returns the ids the tests look for and both tokens."""
    recent = datetime.now() - timedelta(days=1)

    async def run() -> dict:
        local = await Federation(local_dir).setup()
        # One linkage key across the two gateways: the same person has the same personId.
        shutil.copytree(local_dir / "keys", peer_dir / "keys", dirs_exist_ok=True)
        peer = await Federation(peer_dir).setup()
        ref = await local.add_person(ID_NUMBER, "欧阳远方")
        assert ref == peer.indexer.person_ref(ID_NUMBER)
        await local.add_result(ref, reported_at=recent)
        # A recent visit at each clinician's hospital, recorded by its bureau: the local
        # clinician treats the person, and so does the connection's hospital at the peer.
        local_visits = await local.add_visits(ref, 1, with_prescriptions=False, begin=RECENT_VISIT)
        await peer.add_person(ID_NUMBER, "欧阳远方", source="bureau-370000", region="370102")
        peer_visits = await peer.add_visits(
            ref,
            2,
            source="bureau-370000",
            institution="H37010200003",
            insured="370102",
            text="外省诊断",
            begin=RECENT_VISIT,
        )
        peer_result = await peer.add_result(ref, source="hospital-h37010200003", reported_at=recent)
        peer_settlement = await peer.add_cross_settlement(
            ref, when=datetime(2021, 3, 1, 9), total_fen=88800
        )
        token = peer.token("clinician", "H37010200003", purposes=["TREATMENT"])
        caller = local.token("clinician", "H33010600001", purposes=["TREATMENT"])
        return dict(
            ref=ref,
            local_visits=local_visits,
            peer_visits=peer_visits,
            peer_result=peer_result,
            peer_settlement=peer_settlement,
            token=token,
            caller=caller,
        )

    return asyncio.run(run())


def ask(gateway, facts: dict, query: str = RECORD) -> dict:
    response = httpx.post(
        gateway.url + "/graphql",
        timeout=30,
        json={"query": query, "variables": {"p": facts["ref"]}},
        headers={"Authorization": f"Bearer {facts['caller']}", "X-Purpose-Of-Use": "TREATMENT"},
    )
    assert response.status_code == 200, response.text
    return response.json()
