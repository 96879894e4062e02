"""Sealed fields: ``X-Seal-To: <kid>`` HPKE-seals every level-4+ value to a partner key."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from gateway.cli import main as medfed
from security.crypto.hpke_seal import PREFIX, SealingError
from security.crypto.partners import PartnerKeyError, load, partners_file
from security.crypto.unseal import load_private_key, unseal_response
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


async def ask(fed, app, ref: str, kid: str | None = None, org: str = ORG):
    client = fed.client(app, fed.token("clinician", org), "TREATMENT")
    headers = {"X-Seal-To": kid} if kid else {}
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
async def test_sealed_answer_hides_level4_and_opens_to_the_exact_answer(world, tmp_path, kem):
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
    assert person["name"].startswith(PREFIX + key.kid + ":")
    assert person["personId"] == ref and person["gender"]  # below level 4: in the clear
    assert body["extensions"]["sealing"]["kid"] == key.kid
    assert body["extensions"]["sealing"]["suite"].startswith(kem + "/")
    assert unseal_response(sealed.content, key) == plain.json()


async def test_a_sealed_value_moved_to_another_path_or_request_does_not_open(world, tmp_path):
    fed, ref = world
    key = load_private_key(keygen(fed, "X25519", tmp_path))
    app = fed.app()
    first, second = [await ask(fed, app, ref, key.kid) for _ in range(2)]
    first, second = first.json(), second.json()
    swapped = json.loads(json.dumps(first))
    person = swapped["data"]["person"]
    person["name"], person["address"] = person["address"], person["name"]
    with pytest.raises(SealingError, match=r"person\.name"):
        unseal_response(swapped, key)
    edges = json.loads(json.dumps(first))["data"]["person"]["cloudRecord"]["visits"]["edges"]
    moved = json.loads(json.dumps(first))
    moved_edges = moved["data"]["person"]["cloudRecord"]["visits"]["edges"]
    moved_edges[0]["node"]["diagnosisText"] = edges[1]["node"]["diagnosisText"]
    with pytest.raises(SealingError, match=r"edges\.0\.node\.diagnosisText"):
        unseal_response(moved, key)
    replayed = json.loads(json.dumps(second))
    replayed["data"]["person"]["name"] = first["data"]["person"]["name"]
    with pytest.raises(SealingError, match=r"person\.name"):
        unseal_response(replayed, key)
    other = load_private_key(keygen(fed, "X25519", tmp_path))
    with pytest.raises(SealingError):
        unseal_response(first, other)


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
    registry = partners_file(fed.data_dir, None)
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
    app = fed.app()
    plain = await ask(fed, app, ref)
    sealed = await ask(fed, app, ref, load_private_key(key_file).kid)
    (tmp_path / "answer.json").write_bytes(sealed.content)
    capsys.readouterr()
    assert medfed(["unseal", "--key", str(key_file), str(tmp_path / "answer.json")]) == 0
    assert json.loads(capsys.readouterr().out) == plain.json()
    tampered = sealed.content.replace(b'"name":"medfed-sealed:v1:', b'"nom":"medfed-sealed:v1:')
    (tmp_path / "tampered.json").write_bytes(tampered)
    assert medfed(["unseal", "--key", str(key_file), str(tmp_path / "tampered.json")]) == 2
    assert "person.nom" in capsys.readouterr().err
