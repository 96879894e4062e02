"""Sealed answers: ``X-Seal-To: <kid>`` seals identifying and level-4+ values to a partner key
(one HPKE context per answer) and the gateway signs the answer; the partner verifies it
against the pinned gateway key before anything opens."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.cli import main as medfed
from security.audit.signer import Ed25519Signer
from security.crypto import hpke_seal, sealed_answer
from security.crypto.hpke_seal import SealingError
from security.crypto.partners import PartnerKeyError, load, partners_file
from security.crypto.sealed_answer import PREFIX, Sealer
from security.crypto.unseal import (
    GatewayKey,
    UnauthenticatedAnswerWarning,
    load_private_key,
    unseal_response,
)
from tests.support.audit import raw_entries
from tests.support.federation import RECENT_VISIT, Federation, make_id_number

ORG = "H33010600001"
NAME, ADDRESS, PHONE = "王秀英", "杭州市西湖区文三路1号", "13812345678"
DIAGNOSIS, FINDINGS = "原发性高血压", "右肺上叶磨玻璃结节"
ID_NUMBER = make_id_number()
SECRETS = (NAME, ADDRESS, PHONE, ID_NUMBER, DIAGNOSIS, FINDINGS, "I10")

QUERY = """query($id: ID!) { person(personId: $id) { personId name idNumber phone address
  gender cloudRecord {
    visits(first: 10) { edges { node { visitId diagnosisText codes: diagnosisCodes
        prescriptions { items { drugName } } } } }
    testResults(first: 10) { nodes { ...result } }
} } }
fragment result on TestResult { itemName findings }"""


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(ID_NUMBER, NAME, address=ADDRESS, phone=PHONE)
    await fed.add_visits(ref, 3, text=DIAGNOSIS, begin=RECENT_VISIT)  # the hospital treats
    await fed.add_result(ref, category="IMAGING", findings=FINDINGS, modality="CT")
    return fed, ref


def keygen(fed, kem: str, out: Path, org: str = ORG) -> Path:
    before = set(out.glob("*.key")) if out.exists() else set()
    assert (
        medfed(
            [
                "--data-dir",
                str(fed.data_dir),
                "partner",
                "keygen",
                "--org",
                org,
                "--kem",
                kem,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    (path,) = set(out.glob("*.key")) - before
    return path


async def ask(
    fed, app, ref: str, kid: str | None = None, org: str = ORG, client_id: str | None = None
):
    client = fed.client(app, fed.token("clinician", org), "TREATMENT")
    headers = {"X-Seal-To": kid} if kid else {}
    if client_id:
        headers["X-Request-Id"] = client_id
    async with client as c:
        return await c.post(
            "/graphql", json={"query": QUERY, "variables": {"id": ref}}, headers=headers
        )


def escaped(text: str) -> str:
    return json.dumps(text)[1:-1]  # the \\uXXXX form JSON uses for Chinese


def assert_no_plaintext(raw: bytes) -> None:
    # Sealed values are base64 ciphertext, where a short secret such as "I10" turns up by
    # chance (about once in fifteen answers): look everywhere except inside them.
    outside = re.sub(re.escape(PREFIX.encode()) + rb'[^"]*', b"", raw)
    for secret in SECRETS:
        assert secret.encode() not in outside, secret
        assert escaped(secret).encode() not in outside, secret


@pytest.mark.parametrize("kem", ["X25519", "MLKEM768-X25519"])
async def test_sealed_answer_hides_identity_and_opens_to_the_exact_answer(world, tmp_path, kem):
    fed, ref = world
    key_file = keygen(fed, kem, tmp_path / "partner")
    assert os.stat(key_file).st_mode & 0o077 == 0
    key = load_private_key(key_file)
    app = fed.app()
    plain = await ask(fed, app, ref)
    sealed = await ask(fed, app, ref, key.kid)
    assert plain.status_code == sealed.status_code == 200
    assert "errors" not in plain.json()
    assert_no_plaintext(sealed.content)
    body = sealed.json()
    person = body["data"]["person"]
    for field in ("name", "idNumber", "phone", "address", "gender"):  # identity and contact
        assert person[field].startswith(PREFIX + key.kid + ":"), field
    assert person["personId"] == ref  # the pseudonym partners join on stays clear
    sealing = body["extensions"]["sealing"]
    assert sealing["format"] == "medfed-sealed/2" and sealing["kid"] == key.kid
    assert sealing["suite"].startswith(kem + "/")
    assert sealing["requestId"] == sealed.headers["x-request-id"]
    # One context per answer: the values are numbered 0..n-1 in the listed order.
    assert sealing["sealed"] == len(sealing["paths"]) > 5
    assert person["name"].split(":")[3] == str(sealing["paths"].index(["person", "name"]))
    assert unseal_response(sealed.content, key, gateway_key=pinned(fed)) == plain.json()


def pinned(fed) -> GatewayKey:
    return GatewayKey.load(fed.data_dir / "keys" / "sealing.pub")


def copy(answer: dict) -> dict:
    return json.loads(json.dumps(answer))


@pytest.fixture
async def sealed_pair(world, tmp_path):
    """Two sealed answers to the same question, the partner key, and the plain answer."""
    fed, ref = world
    key = load_private_key(keygen(fed, "X25519", tmp_path))
    app = fed.app()
    first = (await ask(fed, app, ref, key.kid, client_id="partner-req-1")).json()
    second = (await ask(fed, app, ref, key.kid, client_id="partner-req-2")).json()
    plain = (await ask(fed, app, ref)).json()
    return fed, key, first, second, plain


async def test_a_substituted_sealed_value_is_refused(sealed_pair):
    fed, key, first, second, plain = sealed_pair
    gateway = pinned(fed)
    assert unseal_response(first, key, gateway_key=gateway) == plain  # positive control
    swapped = copy(first)
    person = swapped["data"]["person"]
    person["name"], person["address"] = person["address"], person["name"]
    edges = swapped["data"]["person"]["cloudRecord"]["visits"]["edges"]
    from_other = copy(second)["data"]["person"]["cloudRecord"]["visits"]["edges"]
    moved = copy(first)
    moved["data"]["person"]["cloudRecord"]["visits"]["edges"][0]["node"]["diagnosisText"] = edges[
        1
    ]["node"]["diagnosisText"]
    spliced = copy(first)
    spliced["data"]["person"]["cloudRecord"]["visits"]["edges"][0] = from_other[0]
    for tampered in (swapped, moved, spliced):
        with pytest.raises(SealingError, match="signature does not verify"):
            unseal_response(tampered, key, gateway_key=gateway)


async def test_a_forged_answer_is_refused_even_when_well_formed(sealed_pair, tmp_path):
    """Anyone holding the partner's public key can seal "healthy" to it; only the gateway
    can sign."""
    fed, key, first, _, _ = sealed_pair
    public = load(partners_file(fed.data_dir))[key.kid].public_key
    forged = copy(first)
    sealer = Sealer("X25519", public, key.kid, first["extensions"]["sealing"]["requestId"], None)
    for edge in forged["data"]["person"]["cloudRecord"]["visits"]["edges"]:
        edge["node"]["diagnosisText"] = "healthy"
    forged["extensions"]["sealing"] = _reseal(forged["data"], sealer)
    forger = Ed25519Signer("medfed-sealing", Ed25519PrivateKey.generate())
    sealed_answer.sign(forged, forger.sign)
    with pytest.raises(SealingError, match="signature does not verify"):
        unseal_response(forged, key, gateway_key=pinned(fed))
    # Positive control: the forgery is well formed; it opens under the forger's own key.
    opened = unseal_response(forged, key, gateway_key=GatewayKey(forger.verifier()))
    assert (
        opened["data"]["person"]["cloudRecord"]["visits"]["edges"][0]["node"]["diagnosisText"]
        == "healthy"
    )


def _reseal(data: dict, sealer: Sealer) -> dict:
    """Seal every string of ``data`` that is a sealed value or a diagnosis, in walk order."""

    def walk(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, str) and (v.startswith(PREFIX) or k == "diagnosisText"):
                    value[k] = sealer.seal([*path, k], "healthy" if k == "diagnosisText" else v)
                else:
                    walk(v, [*path, k])
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, [*path, i])

    walk(data, [])
    return sealer.extension("medfed-sealing")


async def test_a_replayed_answer_is_refused_when_the_partner_names_its_request(sealed_pair):
    fed, key, first, second, plain = sealed_pair
    gateway = pinned(fed)
    # The partner asked with X-Request-Id: partner-req-2 and is handed the older answer.
    with pytest.raises(SealingError, match="replayed"):
        unseal_response(first, key, gateway_key=gateway, client_request_id="partner-req-2")
    assert unseal_response(second, key, gateway_key=gateway, client_request_id="partner-req-2")
    server_id = second["extensions"]["sealing"]["requestId"]
    assert first["extensions"]["sealing"]["requestId"] != server_id
    with pytest.raises(SealingError, match="replayed"):
        unseal_response(first, key, gateway_key=gateway, request_id=server_id)
    assert unseal_response(second, key, gateway_key=gateway, request_id=server_id) == plain


async def test_a_plaintext_or_a_clear_field_changed_beside_sealed_values_is_refused(sealed_pair):
    fed, key, first, _, _ = sealed_pair
    gateway = pinned(fed)
    stripped = copy(first)
    stripped["data"]["person"]["name"] = "王秀英"  # a plaintext where a sealed value belongs
    repointed = copy(first)
    repointed["data"]["person"]["personId"] = "0" * 32  # the sealed values now "belong" elsewhere
    recounted = copy(first)
    recounted["extensions"]["sealing"]["sealed"] -= 1
    for tampered in (stripped, repointed, recounted):
        with pytest.raises(SealingError, match="signature does not verify"):
            unseal_response(tampered, key, gateway_key=gateway)
    # Even where the signature is not the first line of defence, the listed paths are.
    with pytest.raises(SealingError, match="a plaintext where a sealed value belongs"):
        sealed_answer.verify_and_open(
            stripped, key.key, lambda _m, _s: True, sealed_answer.Expected(key.kid, key.kem)
        )
    with pytest.raises(SealingError, match="count does not match"):
        sealed_answer.verify_and_open(
            recounted, key.key, lambda _m, _s: True, sealed_answer.Expected(key.kid, key.kem)
        )


async def test_a_downgrade_to_the_unsigned_format_is_refused(sealed_pair):
    fed, key, first, _, _ = sealed_pair
    public = load(partners_file(fed.data_dir))[key.kid].public_key
    request_id = first["extensions"]["sealing"]["requestId"]
    # A format-1 answer anyone can forge with the partner's public key.
    downgraded = copy(first)
    person = downgraded["data"]["person"]
    person["name"] = hpke_seal.seal("X25519", public, key.kid, request_id, ["person", "name"], "x")
    downgraded["extensions"]["sealing"] = {"requestId": request_id, "kid": key.kid, "sealed": 1}
    for field in ("idNumber", "phone", "address", "gender"):
        person[field] = None
    downgraded["data"]["person"]["cloudRecord"] = None
    with pytest.raises(SealingError, match="format-1 sealed answer carries no signature"):
        unseal_response(downgraded, key, gateway_key=pinned(fed))
    # v1 answers still open when the partner allows them, with a warning.
    with pytest.warns(UnauthenticatedAnswerWarning):
        opened = unseal_response(downgraded, key, allow_v1=True)
    assert opened["data"]["person"]["name"] == "x"
    # ...and even then a count that does not match is refused.
    downgraded["extensions"]["sealing"]["sealed"] = 2
    with pytest.warns(UnauthenticatedAnswerWarning), pytest.raises(SealingError, match="claims"):
        unseal_response(downgraded, key, allow_v1=True)


async def test_a_v2_answer_needs_the_pinned_key_and_another_partner_key_fails(
    sealed_pair, tmp_path
):
    fed, key, first, _, _ = sealed_pair
    with pytest.raises(SealingError, match="pin the gateway's sealing key"):
        unseal_response(first, key)
    other = load_private_key(keygen(fed, "X25519", tmp_path / "other"))
    with pytest.raises(SealingError, match="sealed to key"):
        unseal_response(first, other, gateway_key=pinned(fed))


async def test_unknown_kid_and_another_orgs_kid_are_refused_before_anything_runs(world, tmp_path):
    fed, ref = world
    theirs = load_private_key(keygen(fed, "X25519", tmp_path, org="H37010200003"))
    app = fed.app()
    for kid in ("no-such-key", theirs.kid):
        response = await ask(fed, app, ref, kid)
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "SEAL_KEY_UNKNOWN"
        assert_no_plaintext(response.content)


async def test_broken_registry_refuses_sealing_and_names_the_key(world, tmp_path):
    fed, ref = world
    key = load_private_key(keygen(fed, "X25519", tmp_path))
    registry = partners_file(fed.data_dir)
    registry.write_text(registry.read_text().replace('kem = "X25519"', 'kem = "RSA"'))
    with pytest.raises(PartnerKeyError, match=key.kid):
        load(registry)
    response = await ask(fed, fed.app(), ref, key.kid)
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "SEALING_UNAVAILABLE"


async def test_audit_log_of_a_sealed_request_holds_no_plaintext(world, tmp_path):
    fed, ref = world
    key = load_private_key(keygen(fed, "MLKEM768-X25519", tmp_path))
    before = len(await raw_entries(fed))
    response = await ask(fed, fed.app(), ref, key.kid)
    assert response.status_code == 200
    entries = await raw_entries(fed)
    assert len(entries) > before  # the event builder ran
    for entry in entries[before:]:
        assert_no_plaintext(entry)


async def test_medfed_unseal_round_trip(world, tmp_path, capsys):
    fed, ref = world
    key_file = keygen(fed, "MLKEM768-X25519", tmp_path)
    assert (key_file.parent / "sealing.pub").read_text() == (
        fed.data_dir / "keys" / "sealing.pub"
    ).read_text()  # keygen put the gateway's key beside the partner's
    app = fed.app()
    plain = await ask(fed, app, ref)
    sealed = await ask(fed, app, ref, load_private_key(key_file).kid, client_id="mine-1")
    (tmp_path / "answer.json").write_bytes(sealed.content)
    capsys.readouterr()
    assert medfed(["unseal", "--key", str(key_file), str(tmp_path / "answer.json")]) == 0
    assert json.loads(capsys.readouterr().out) == plain.json()
    args = ["unseal", "--key", str(key_file), "--client-request-id", "mine-2"]
    assert medfed([*args, str(tmp_path / "answer.json")]) == 2
    assert "replayed" in capsys.readouterr().err
    tampered = sealed.content.replace(b'"name":"medfed-sealed:v2:', b'"nom":"medfed-sealed:v2:')
    (tmp_path / "tampered.json").write_bytes(tampered)
    assert medfed(["unseal", "--key", str(key_file), str(tmp_path / "tampered.json")]) == 2
    assert "signature does not verify" in capsys.readouterr().err
