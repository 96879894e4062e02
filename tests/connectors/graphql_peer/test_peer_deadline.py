"""A peer that hangs or fails cannot take the local sources' time: peers get a share of the
request's deadline (``[gateway] peer_deadline_share``), and a peer that failed once in a
request is not asked again in it. The peers here are real HTTP servers on 127.0.0.1 that
accept a request and then never answer, or answer 500 at once; the local sources are the
embedded SQLite ones, read through the in-process gateway."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from connectors.fanout import Deadline
from connectors.graphql_peer import PeerSpec
from gateway.app import build_services
from gateway.config import ConfigError, load_settings
from tests.support.federation import RECENT_VISIT, REPO, Federation, gql, make_id_number

PEER = "peer-hung"
RECORD = (
    "query($p: ID!) { person(personId: $p) { name cloudRecord { "
    "visits(first: 50) { nodes { visitId } } "
    "enrollments { nodes { enrollmentId } } "
    "testResults { nodes { resultId } } } } }"
)


class Peer:
    """An HTTP server that counts the requests it is sent; ``hang`` never answers them,
    otherwise each gets a 500 at once."""

    def __init__(self, hang: bool) -> None:
        self.hang, self.requests = hang, 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")  # the request head; its body is not needed
            self.requests += 1
            if self.hang:
                await reader.read()  # until the client gives up and closes
            else:
                writer.write(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(peer: Peer) -> AsyncIterator[int]:
    server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _federation(data_dir: Path) -> tuple[Federation, str, list[str]]:
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(seq=321), "欧阳远方")
    visits = await fed.add_visits(ref, 2, with_prescriptions=False, begin=RECENT_VISIT)
    return fed, ref, visits


def _with_peer(fed: Federation, port: int, timeout: float, retries: int) -> None:
    token = fed.data_dir / "peer.token"
    token.write_text("a-token-the-peer-never-reads")
    spec = PeerSpec(
        name=PEER,
        url=f"http://127.0.0.1:{port}/graphql",
        token_file=token,
        purpose="TREATMENT",
        timeout_seconds=timeout,
        retries=retries,
        breaker_failures=1000,  # the breaker stays closed: only the request's own rules act
    )
    fed.settings = dataclasses.replace(fed.settings, peers=(spec,))


async def _ask(fed: Federation, ref: str, deadline: float, share: float) -> dict:
    services = build_services(fed.settings)
    services.deadline_seconds, services.peer_deadline_share = deadline, share
    app = fed.app(services)
    caller = fed.token("clinician", "H33010600001", purposes=["TREATMENT"])
    try:
        async with fed.client(app, caller, "TREATMENT") as client:
            return await gql(client, RECORD, {"p": ref})
    finally:
        await services.registry.dispose()


def _unavailable(body: dict) -> dict[str, str]:
    return {
        error["extensions"]["source"]: error["extensions"]["reason"]
        for error in body.get("errors", [])
        if error["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    }


@pytest.mark.parametrize("share", [0.5, 1.0])
async def test_a_hung_peer_is_cut_at_its_share_and_the_local_lists_complete(data_dir, share):
    """At share 1.0 (no reserve, as before) the hung peer uses the whole deadline in the
    person lookup, and the local bureau's lists that follow miss it: the negative control."""
    fed, ref, visits = await _federation(data_dir)
    peer = Peer(hang=True)
    async with serving(peer) as port:
        # The per-attempt timeout is longer than the deadline: only the share cuts the wait.
        _with_peer(fed, port, timeout=60, retries=0)
        body = await _ask(fed, ref, deadline=3.0, share=share)
    assert peer.requests == 1  # asked once, in the person lookup, never in the lists
    person = body["data"]["person"]
    assert person is not None  # the local bureau answered the lookup
    record = person["cloudRecord"]
    if share == 0.5:
        assert _unavailable(body) == {PEER: "PEER_TIMEOUT"}
        assert person["name"] is not None  # the treating relation came from the visits
        assert {v["visitId"] for v in record["visits"]["nodes"]} == set(visits)
        assert record["enrollments"]["nodes"]  # every local list, not only the first
    else:
        assert _unavailable(body)["bureau-330000"] == "DEADLINE_EXCEEDED"
        assert _unavailable(body)[PEER] == "PEER_TIMEOUT"
        assert record["visits"]["nodes"] == []
        assert person["name"] is None  # without the visits, no treating relation either


async def test_a_failed_peer_is_not_asked_again_in_the_same_request(data_dir):
    fed, ref, visits = await _federation(data_dir)
    peer = Peer(hang=False)
    async with serving(peer) as port:
        _with_peer(fed, port, timeout=5, retries=0)
        first = await _ask(fed, ref, deadline=10.0, share=0.6)
        assert peer.requests == 1  # the person lookup asked it; the three lists did not
        second = await _ask(fed, ref, deadline=10.0, share=0.6)
        assert peer.requests == 2  # the memo lives for one request: the next one asks again
    for body in (first, second):
        assert _unavailable(body) == {PEER: "PEER_ERROR"}  # its own reason, not a new one
        nodes = body["data"]["person"]["cloudRecord"]["visits"]["nodes"]
        assert {v["visitId"] for v in nodes} == set(visits)


def test_the_share_is_of_the_whole_deadline_and_never_beyond_it():
    half = Deadline(10.0, peer_share=0.5)
    assert 4.5 < half.peer_remaining() <= 5.0 < half.remaining() <= 10.0
    whole = Deadline(10.0, peer_share=1.0)
    assert abs(whole.peer_remaining() - whole.remaining()) < 0.5


@pytest.mark.parametrize("share", [0, -0.1, 1.01, True, "0.5"])
def test_a_share_outside_0_to_1_is_refused_naming_its_key(tmp_path, share):
    settings = load_settings(REPO / "medfed.toml", data_dir=tmp_path, env={})
    with pytest.raises(ConfigError, match=r"gateway\.peer_deadline_share"):
        settings.with_tables(gateway={"peer_deadline_share": share})


@pytest.mark.parametrize(("share", "expected"), [(None, 0.6), (1, 1.0), (0.25, 0.25)])
def test_a_share_from_0_to_1_is_taken(tmp_path, share, expected):
    settings = load_settings(REPO / "medfed.toml", data_dir=tmp_path, env={})
    raw = {} if share is None else {"peer_deadline_share": share}
    ok = settings.with_tables(gateway=raw)
    assert ok.config.gateway.peer_deadline_share == expected
