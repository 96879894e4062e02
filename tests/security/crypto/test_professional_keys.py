"""Professionals' signing keys: OpenSSL (an independent implementation) verifies what we sign
with the registered public key exactly as a third party fetches it, for Ed25519 (standard
profile) and SM2 with SM3 (national profile); and the registry refuses what it should."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest

from security.crypto.professional_keys import ProfessionalKeys, parse

MESSAGE = 'medfed/e-prescription/v1\n{"rxId":"RX1","drug":"苯磺酸氨氯地平片"}'.encode()
SM3_WITH_ID = ["-digest", "sm3", "-pkeyopt", "distid:1234567812345678"]


def openssl() -> str:
    binary = shutil.which("openssl")
    assert binary, "openssl is not installed: run `make install`"
    return binary


def _openssl_verifies(tmp_path, registration: dict, signature: str, message: bytes) -> bool:
    (tmp_path / "pub.pem").write_text(registration["publicKeyPem"])
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(base64.b64decode(signature.split(":")[2]))
    extra = SM3_WITH_ID if registration["algorithm"] == "sm2-sm3" else []
    result = subprocess.run(
        [
            openssl(),
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(tmp_path / "pub.pem"),
            "-rawin",
            *extra,
            "-in",
            str(tmp_path / "msg"),
            "-sigfile",
            str(tmp_path / "sig"),
        ],
        capture_output=True,
        text=True,
    )
    return result.returncode == 0 and "Verified Successfully" in result.stdout


@pytest.mark.parametrize(
    ("profile", "algorithm"), [("standard", "ed25519"), ("national", "sm2-sm3")]
)
def test_openssl_verifies_a_professionals_signature_with_the_registered_key(
    tmp_path, profile, algorithm
):
    keys = ProfessionalKeys(tmp_path / "keys", profile)
    signature = keys.sign("H33010600001", "DH33010600001007", MESSAGE)
    found, key_id, _raw = parse(signature)
    assert found == algorithm
    registration = json.loads((tmp_path / "keys" / "professionals" / f"{key_id}.json").read_text())
    assert (registration["org"], registration["code"]) == ("H33010600001", "DH33010600001007")
    assert _openssl_verifies(tmp_path, registration, signature, MESSAGE)
    # ... and only for that message (the negative control of the same command)
    assert not _openssl_verifies(tmp_path, registration, signature, MESSAGE + b" ")
    assert keys.verify(signature, MESSAGE).valid
    assert not keys.verify(signature, MESSAGE + b" ").valid


def test_one_key_per_professional_kept_across_instances_and_private_files_owner_only(tmp_path):
    one = ProfessionalKeys(tmp_path / "keys")
    first = one.sign("H33010600001", "DH33010600001007", MESSAGE)
    other = one.sign("H33010600001", "DH33010600001008", MESSAGE)
    again = ProfessionalKeys(tmp_path / "keys").sign("H33010600001", "DH33010600001007", MESSAGE)
    assert parse(first)[1] == parse(again)[1] != parse(other)[1]
    for path in (tmp_path / "keys" / "professionals").glob("*.key"):
        assert path.stat().st_mode & 0o077 == 0


def test_a_signature_of_no_registered_key_or_the_wrong_form_is_not_valid(tmp_path):
    keys = ProfessionalKeys(tmp_path / "a")
    signature = keys.sign("H33010600001", "DH33010600001007", MESSAGE)
    stranger = ProfessionalKeys(tmp_path / "b")
    verdict = stranger.verify(signature, MESSAGE)
    assert not verdict.valid and "not registered" in verdict.reason
    # The old demo "signature" (a SHA-256 of three strings) is no signature at all.
    assert not keys.verify("SM2:" + "ab" * 32, MESSAGE).valid
    assert not keys.verify(None, MESSAGE).valid
    assert keys.verify(signature, MESSAGE).valid  # positive control
