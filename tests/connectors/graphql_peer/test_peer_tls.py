"""The peer connector over mutual TLS, between two real medfed processes on 127.0.0.1: the
peer serves HTTPS with a certificate from a throwaway CA and requires a client certificate
from it; the local gateway trusts only that CA and presents its own certificate as well as
its token. A peer certificate from another CA, or a connection without a client
certificate, is refused, and the answer says SOURCE_UNAVAILABLE for the peer (fail closed:
never plain text, never an unverified peer). Certificates are generated at test time."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.federation import REPO
from tests.support.peer import PEER, ask, peer_source, populate
from tests.support.processes import Process, medfed
from tests.support.tls import make_ca


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict]:
    local_dir, peer_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("peer")
    pki = tmp_path_factory.mktemp("pki")
    ca, stranger = make_ca(pki, "province-ca"), make_ca(pki, "stranger-ca")
    server = ca.issue(pki, "peer-server", server=True)
    client = ca.issue(pki, "local-client", server=False)
    facts = populate(local_dir, peer_dir)
    token_file = local_dir / "peer.token"
    token_file.write_text(facts["token"])
    probe = ssl.create_default_context(cafile=str(ca.cert))
    probe.load_cert_chain(str(client.cert), str(client.key))
    peer = medfed(
        peer_dir,
        "--tls-cert",
        str(server.cert),
        "--tls-key",
        str(server.key),
        "--tls-client-ca",
        str(ca.cert),
        verify=probe,
    ).start()
    try:
        yield dict(
            facts=facts,
            peer=peer,
            local_dir=local_dir,
            token_file=token_file,
            ca=ca,
            stranger=stranger,
            client=client,
        )
    finally:
        peer.stop()


@contextlib.contextmanager
def local_gateway(world: dict, name: str, **tls: Path) -> Iterator[Process]:
    """A local gateway reading the peer with these TLS settings; one at a time, since they
    share the local data directory."""
    peer: Process = world["peer"]
    assert peer.url.startswith("https://127.0.0.1:")
    config = world["local_dir"] / f"medfed-{name}.toml"
    config.write_text(
        (REPO / "medfed.toml").read_text() + peer_source(peer.url, world["token_file"], tls=tls)
    )
    local = medfed(world["local_dir"], config=config).start()
    try:
        yield local
    finally:
        local.stop()


def visits_of(answer: dict) -> set[str]:
    return {v["visitId"] for v in answer["data"]["person"]["cloudRecord"]["visits"]["nodes"]}


def assert_peer_unavailable(answer: dict, facts: dict) -> None:
    codes = {(e["extensions"]["code"], e["extensions"].get("source")) for e in answer["errors"]}
    assert codes == {("SOURCE_UNAVAILABLE", PEER)}
    assert visits_of(answer) == set(facts["local_visits"])  # local rows still come


def test_the_peer_rows_arrive_over_mutual_tls(world):
    facts, ca, client = world["facts"], world["ca"], world["client"]
    with local_gateway(
        world, "mtls", ca_file=ca.cert, client_cert=client.cert, client_key=client.key
    ) as local:
        answer = ask(local, facts)
    assert "errors" not in answer, answer
    assert visits_of(answer) == {*facts["local_visits"], *facts["peer_visits"]}
    record = answer["data"]["person"]["cloudRecord"]
    assert facts["peer_result"] in {r["resultId"] for r in record["testResults"]["nodes"]}


def test_a_peer_certificate_from_another_ca_is_not_trusted(world):
    facts, client = world["facts"], world["client"]
    # The cause, seen directly: the peer's certificate does not verify against this CA.
    stranger = ssl.create_default_context(cafile=str(world["stranger"].cert))
    stranger.load_cert_chain(str(client.cert), str(client.key))
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(world["peer"].url + "/healthz", verify=stranger, timeout=5)
    with local_gateway(
        world,
        "stranger",
        ca_file=world["stranger"].cert,
        client_cert=client.cert,
        client_key=client.key,
    ) as local:
        assert_peer_unavailable(ask(local, facts), facts)


def test_a_peer_requiring_client_certificates_refuses_a_connection_without_one(world):
    facts, ca = world["facts"], world["ca"]
    # The cause, seen directly: the server trusts-and-verifies, but the client has no
    # certificate, so the peer ends the handshake (how depends on the TLS version).
    anonymous = ssl.create_default_context(cafile=str(ca.cert))
    with pytest.raises(httpx.TransportError):
        httpx.get(world["peer"].url + "/healthz", verify=anonymous, timeout=5)
    with local_gateway(world, "anonymous", ca_file=ca.cert) as local:
        assert_peer_unavailable(ask(local, facts), facts)
