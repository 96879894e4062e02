"""SM2 checkpoint signatures for the national profile."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest

from security.audit.signer import Signer, Verifier, verifier_key_string
from security.crypto.sm2 import (
    SM2KeyError,
    SM2Signer,
    SM2Verifier,
    load_or_create_sm2,
)

MESSAGE = b"medfed.example/audit\n1024\nq1w2e3r4t5y6u7i8o9p0\n"


@pytest.fixture(scope="module")
def signer() -> SM2Signer:
    return SM2Signer.generate("medfed.example/audit")


def test_sign_and_verify(signer):
    signature = signer.sign(MESSAGE)
    assert signer.verify(MESSAGE, signature)
    assert signer.verifier().verify(MESSAGE, signature)
    assert not signer.verify(MESSAGE + b"x", signature)
    tampered = bytearray(signature)
    tampered[-1] ^= 1
    assert not signer.verify(MESSAGE, bytes(tampered))
    assert not signer.verify(MESSAGE, b"not DER")


def test_another_key_does_not_verify(signer):
    other = SM2Signer.generate("medfed.example/audit")
    assert not other.verify(MESSAGE, signer.sign(MESSAGE))


def test_fits_the_audit_signer_protocol(signer):
    assert isinstance(signer, Signer) and isinstance(signer.verifier(), Verifier)
    assert signer.algorithm_id == 0xFF
    assert verifier_key_string(signer).startswith("medfed.example/audit+")
    again = SM2Verifier.from_public_key_bytes(signer.name, signer.public_key_bytes)
    assert again.verify(MESSAGE, signer.sign(MESSAGE))


def test_bad_keys_are_refused():
    with pytest.raises(SM2KeyError):
        SM2Signer("x", b"\x00" * 32)
    with pytest.raises(SM2KeyError):
        SM2Verifier("x", b"\x04" + b"\x01" * 64)  # not on the curve
    with pytest.raises(SM2KeyError):
        SM2Verifier.from_public_key_bytes("x", b"\x04" + b"\x01" * 64)


def test_private_key_never_in_repr(signer):
    assert signer.private_key_bytes().hex() not in repr(signer)


def test_load_or_create_keeps_one_owner_only_key(tmp_path):
    first = load_or_create_sm2(tmp_path / "keys", "medfed.example/audit")
    path = tmp_path / "keys" / "audit-log.sm2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_or_create_sm2(tmp_path / "keys", "medfed.example/audit")
    assert second.public_key_bytes == first.public_key_bytes
    path.chmod(0o644)
    with pytest.raises(SM2KeyError, match="chmod 600"):
        load_or_create_sm2(tmp_path / "keys", "medfed.example/audit")


def openssl_sm2() -> str:
    """The openssl binary; the interoperability tests are mandatory (`make install` puts an
    OpenSSL with SM2 in place), so its absence fails rather than skips."""
    binary = shutil.which("openssl")
    assert binary, "openssl is not installed: run `make install` (it installs OpenSSL with SM2)"
    probe = subprocess.run([binary, "list", "-signature-algorithms"], capture_output=True)
    assert b"SM2" in probe.stdout, "this OpenSSL has no SM2: run `make install`"
    return binary


SM3_WITH_ID = ["-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"]


def test_openssl_signatures_verify_here(tmp_path):
    """OpenSSL signs (GB/T 32918.2, SM3, the GM/T 0009 default id) and our verifier accepts."""
    openssl = openssl_sm2()
    key = tmp_path / "key.pem"
    subprocess.run([openssl, "genpkey", "-algorithm", "SM2", "-out", str(key)], check=True)
    spki = subprocess.run(
        [openssl, "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    (tmp_path / "msg").write_bytes(MESSAGE)
    io_files = ["-in", str(tmp_path / "msg"), "-out", str(tmp_path / "sig")]
    subprocess.run(
        [openssl, "pkeyutl", "-sign", "-inkey", str(key), *SM3_WITH_ID, *io_files],
        check=True,
    )
    verifier = SM2Verifier("openssl", spki[-65:])
    signature = (tmp_path / "sig").read_bytes()
    assert verifier.verify(MESSAGE, signature)
    assert not verifier.verify(MESSAGE + b"!", signature)  # and only for that message


def test_our_signatures_verify_in_openssl(signer, tmp_path):
    """An independent implementation accepts ours (GB/T 32918.2, SM3, GM/T 0009 user id)."""
    openssl = openssl_sm2()
    # OpenSSL reads the public key as a DER SubjectPublicKeyInfo: a fixed 26-byte header
    # (id-ecPublicKey, curve SM2 1.2.156.10197.1.301) before the 65-byte point.
    point = signer.public_point
    spki_prefix = bytes.fromhex(
        "3059301306072a8648ce3d020106082a811ccf5501822d034200"
    )  # id-ecPublicKey, SM2 curve
    (tmp_path / "pub.der").write_bytes(spki_prefix + point)
    (tmp_path / "msg").write_bytes(MESSAGE)
    (tmp_path / "sig").write_bytes(signer.sign(MESSAGE))
    result = subprocess.run(
        [
            openssl,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(tmp_path / "pub.der"),
            "-keyform",
            "DER",
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
            "-in",
            str(tmp_path / "msg"),
            "-sigfile",
            str(tmp_path / "sig"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Verified Successfully" in result.stdout
    (tmp_path / "msg").write_bytes(MESSAGE + b"!")  # and OpenSSL refuses another message
    again = subprocess.run(result.args, capture_output=True, text=True)
    assert again.returncode != 0 and "Verified Successfully" not in again.stdout
