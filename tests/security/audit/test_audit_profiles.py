"""Checkpoints under both crypto profiles: Ed25519 (standard) and SM2 with SM3 (national).

The log signs with the profile's key, publishes its C2SP verifier key, and ``medfed audit
verify`` / ``check-consistency`` accept either key type and catch tampering alike.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest

from gateway.cli import main
from security.audit import (
    AuditKeyError,
    NoteError,
    open_checkpoint,
    parse_verifier_key,
    verifier_key_string,
)
from security.audit.note import Checkpoint, sign_checkpoint
from security.audit.signer import VERIFIER_KEY_FILE, Ed25519Verifier, load_or_create_signer
from security.crypto.sm2 import KEY_TYPE_TAG, SM2Signer, SM2Verifier
from tests.support.audit import append_events

ORIGIN = "medfed.local/audit"
PROFILES = {"standard": Ed25519Verifier, "national": SM2Verifier}


# The command reads the embedded defaults, whatever the environment says.
pytestmark = pytest.mark.usefixtures("embedded_cli")


@pytest.fixture(params=sorted(PROFILES))
def profile(request, monkeypatch) -> str:
    monkeypatch.setenv("MEDFED_CRYPTO_PROFILE", request.param)
    return request.param


def _medfed(data_dir: Path, *args: str, capsys) -> tuple[int, str]:
    code = main(["--data-dir", str(data_dir), "audit", *args])
    out, err = capsys.readouterr()
    return code, out + err


def _published(data_dir: Path):
    return parse_verifier_key((data_dir / "keys" / VERIFIER_KEY_FILE).read_text())


def test_the_profile_picks_the_checkpoint_algorithm(data_dir, profile) -> None:
    append_events(data_dir, profile=profile, count=25)
    key = _published(data_dir)
    assert isinstance(key, PROFILES[profile])
    with sqlite3.connect(data_dir / "gateway.db") as db:
        notes = [n for (n,) in db.execute("SELECT note FROM audit_checkpoints ORDER BY size")]
    assert [open_checkpoint(n, [key], ORIGIN).size for n in notes] == [10, 20, 25]
    # Only the chosen algorithm's private key is made.
    assert {p.name for p in (data_dir / "keys").iterdir()} >= {
        "audit-log.pem" if profile == "standard" else "audit-log.sm2",
        VERIFIER_KEY_FILE,
    }
    assert not (
        data_dir / "keys" / ("audit-log.sm2" if profile == "standard" else "audit-log.pem")
    ).exists()


def test_verify_accepts_the_key_and_names_tampering(data_dir, profile, capsys) -> None:
    append_events(data_dir, profile=profile, count=25)
    code, out = _medfed(data_dir, "verify", capsys=capsys)
    assert code == 0, out
    with sqlite3.connect(data_dir / "gateway.db", isolation_level=None) as db:
        note = db.execute("SELECT note FROM audit_checkpoints WHERE size = 20").fetchone()[0]
        db.execute(
            "UPDATE audit_checkpoints SET note = ? WHERE size = 20",
            (note.replace("\n20\n", "\n21\n"),),
        )
    code, out = _medfed(data_dir, "verify", capsys=capsys)
    assert code == 1 and "checkpoint at size 20" in out and "does not verify" in out


def test_check_consistency_offline_with_the_profiles_key(
    data_dir, profile, capsys, tmp_path
) -> None:
    append_events(data_dir, profile=profile, count=12)
    code, old = _medfed(data_dir, "checkpoint", capsys=capsys)
    assert code == 0
    kept = tmp_path / "kept.note"
    kept.write_text(old)
    key = verifier_key_string(_published(data_dir))
    append_events(data_dir, profile=profile, count=9, start=12)
    code, proof = _medfed(data_dir, "proof", "--from", "12", capsys=capsys)
    assert code == 0
    (tmp_path / "proof.json").write_text(proof)
    new = tmp_path / "new.note"
    new.write_text(json.loads(proof)["checkpoint"])
    code, out = _medfed(
        data_dir,
        "check-consistency",
        str(kept),
        str(new),
        str(tmp_path / "proof.json"),
        "--key",
        key,
        capsys=capsys,
    )
    assert code == 0 and "extends your checkpoint at 12" in out
    code, out = _medfed(data_dir, "verify", "--checkpoint", str(kept), "--key", key, capsys=capsys)
    assert code == 0 and "your checkpoint of size 12 is consistent" in out


def test_a_key_of_the_other_profile_does_not_verify(data_dir, tmp_path, capsys) -> None:
    append_events(data_dir, profile="national", count=10)
    other = load_or_create_signer(tmp_path / "other", ORIGIN, "standard")
    code, out = _medfed(data_dir, "verify", "--key", verifier_key_string(other), capsys=capsys)
    assert code == 1 and "no signature by a trusted key" in out


def test_sm2_verifier_key_string_is_type_0xff_with_its_identifier(tmp_path) -> None:
    signer = load_or_create_signer(tmp_path, ORIGIN, "national")
    text = verifier_key_string(signer)
    name, key_id, encoded = text.split("+", 2)
    raw = base64.b64decode(encoded)
    assert name == ORIGIN and len(key_id) == 8
    assert raw[0] == 0xFF and raw[1:].startswith(b"medfed/sm2-sm3\n")
    assert raw[1 + len(KEY_TYPE_TAG) :][:1] == b"\x04" and len(raw) == 1 + 15 + 65
    parsed = parse_verifier_key(text)
    assert isinstance(parsed, SM2Verifier) and parsed.public_point == signer.public_point
    note = sign_checkpoint(Checkpoint(ORIGIN, 3, bytes(32)), signer)
    assert open_checkpoint(note, [parsed]).size == 3
    altered = note.replace("\n3\n", "\n4\n")
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(altered, [parsed])


def test_malformed_or_mismatched_sm2_keys_are_refused(tmp_path) -> None:
    signer = load_or_create_signer(tmp_path, ORIGIN, "national")
    name, key_id, encoded = verifier_key_string(signer).split("+", 2)
    raw = bytearray(base64.b64decode(encoded))
    with pytest.raises(AuditKeyError, match="key hash"):  # another key under the same id
        other = SM2Signer.generate(ORIGIN)
        swapped = base64.b64encode(bytes([0xFF]) + other.public_key_bytes).decode()
        parse_verifier_key(f"{name}+{key_id}+{swapped}")
    raw[-1] ^= 1  # off the curve
    with pytest.raises(AuditKeyError, match="curve"):
        parse_verifier_key(f"{name}+{key_id}+{base64.b64encode(bytes(raw)).decode()}")
    unknown = base64.b64encode(b"\xffsomething/else\n" + bytes(65)).decode()
    with pytest.raises(AuditKeyError, match="supported"):
        parse_verifier_key(f"{name}+{key_id}+{unknown}")
    with pytest.raises(AuditKeyError, match="crypto profile"):
        load_or_create_signer(tmp_path, ORIGIN, "quantum")


async def test_the_gateway_serves_sm2_checkpoints_under_the_national_profile(data_dir, monkeypatch):

    from gateway.app import build_services
    from tests.support.federation import Federation, gql, make_id_number

    monkeypatch.delenv("MEDFED_CRYPTO_PROFILE", raising=False)
    fed = await Federation(data_dir).setup()
    fed.settings = fed.settings.with_tables(crypto={"profile": "national"})
    alice = await fed.add_person(make_id_number(seq=101), "王五")
    app = fed.app(build_services(fed.settings))
    async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        await gql(c, "query($id: ID!) { person(personId: $id) { name } }", {"id": alice})
    async with fed.client(app, fed.token("auditor", "330000"), "AUDIT") as c:
        note = (await gql(c, "{ auditCheckpoint { note } }"))["data"]["auditCheckpoint"]["note"]
        http = (await c.get("/audit/checkpoint")).text
    key = _published(data_dir)
    assert isinstance(key, SM2Verifier)
    assert open_checkpoint(note, [key], ORIGIN).size == 1
    assert open_checkpoint(http, [key], ORIGIN).size == 2  # the auditor's read is logged


def test_a_log_signed_before_and_after_a_profile_switch_verifies_with_both_keys(
    data_dir, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MEDFED_CRYPTO_PROFILE", "standard")
    append_events(data_dir, profile="standard", count=10)
    ed25519 = verifier_key_string(_published(data_dir))
    monkeypatch.setenv("MEDFED_CRYPTO_PROFILE", "national")
    append_events(data_dir, profile="national", count=10, start=10)
    sm2 = verifier_key_string(_published(data_dir))
    assert ed25519 != sm2
    for only in (ed25519, sm2):  # one key leaves the other profile's checkpoints unverified
        code, out = _medfed(data_dir, "verify", "--key", only, capsys=capsys)
        assert code == 1 and "no signature by a trusted key" in out
    code, out = _medfed(data_dir, "verify", "--key", ed25519, "--key", sm2, capsys=capsys)
    assert code == 0, out
