"""C2SP signed notes and checkpoints: round trip, and rejection of any edit."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security.audit import merkle
from security.audit.note import (
    Checkpoint,
    NoteError,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
)
from security.audit.signer import (
    AuditKeyError,
    Ed25519Signer,
    key_hash,
    load_or_create_ed25519,
    parse_verifier_key,
    verifier_key_string,
)

ORIGIN = "medfed.local/audit"


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer(ORIGIN, Ed25519PrivateKey.generate())


def _checkpoint(size: int = 7) -> Checkpoint:
    return Checkpoint(ORIGIN, size, merkle.leaf_hash(b"root"))


def test_checkpoint_note_round_trip(signer) -> None:
    note = sign_checkpoint(_checkpoint(), signer)
    body, _, signature = note.partition("\n\n")
    assert body == f"{ORIGIN}\n7\n{base64.b64encode(merkle.leaf_hash(b'root')).decode()}"
    assert signature.startswith(f"\u2014 {ORIGIN} ") and signature.endswith("\n")
    blob = base64.b64decode(signature.split(" ")[2])
    assert blob[:4] == key_hash(signer) and len(blob) == 4 + 64
    assert open_checkpoint(note, [signer.verifier()], ORIGIN) == _checkpoint()


def test_key_hash_is_the_c2sp_construction(signer) -> None:
    import hashlib

    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + signer.public_key_bytes).digest()
    assert key_hash(signer) == expected[:4]


@pytest.mark.parametrize(
    "edit",
    [
        lambda n: n.replace("\n7\n", "\n8\n"),
        lambda n: n.replace(ORIGIN + "\n", "evil.example/log\n", 1),
        lambda n: n.replace("=\n\n", "A\n\n", 1) if "=\n\n" in n else "x" + n,
    ],
)
def test_an_edited_note_is_rejected(signer, edit) -> None:
    note = sign_checkpoint(_checkpoint(), signer)
    with pytest.raises(NoteError):
        open_checkpoint(edit(note), [signer.verifier()])


def test_signature_by_another_key_is_not_trusted(signer) -> None:
    other = Ed25519Signer(ORIGIN, Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        open_note(sign_checkpoint(_checkpoint(), other), [signer.verifier()])


def test_a_wrong_signature_by_a_known_key_fails_even_beside_a_good_one(signer) -> None:
    note = sign_checkpoint(_checkpoint(), signer)
    text, _, line = note.partition("\n\n")
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[10] ^= 1
    bad_line = f"\u2014 {ORIGIN} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(NoteError, match="does not verify"):
        open_note(f"{text}\n\n{line}{bad_line}", [signer.verifier()])


def test_checkpoint_from_another_log_is_rejected(signer) -> None:
    with pytest.raises(NoteError, match="not 'other/log'"):
        open_checkpoint(sign_checkpoint(_checkpoint(), signer), [signer], "other/log")


@pytest.mark.parametrize(
    "body",
    [
        "o\n007\nAAAA\n",
        "o\n-1\n" + "A" * 44 + "\n",
        "o\n1\n",
        "o\n1\nnot base64!\n",
        "\n1\n" + "A" * 43 + "=\n",
    ],
)
def test_malformed_checkpoints_are_rejected(body: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(body)


def test_verifier_key_string_round_trip(signer) -> None:
    text = verifier_key_string(signer)
    name, hash_hex, _ = text.split("+", 2)
    assert (name, hash_hex) == (ORIGIN, key_hash(signer).hex())
    parsed = parse_verifier_key(text)
    assert parsed.public_key_bytes == signer.public_key_bytes
    with pytest.raises(AuditKeyError, match="key hash does not match"):
        parse_verifier_key(text.replace(hash_hex, "00000000"))


def test_signing_key_is_created_once_private_and_published(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    first = load_or_create_ed25519(keys, ORIGIN)
    assert stat.S_IMODE(os.stat(keys / "audit-log.pem").st_mode) == 0o600
    again = load_or_create_ed25519(keys, ORIGIN)
    assert again.public_key_bytes == first.public_key_bytes
    published = (keys / "audit-log.pub").read_text().strip()
    assert parse_verifier_key(published).public_key_bytes == first.public_key_bytes
    os.chmod(keys / "audit-log.pem", 0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        load_or_create_ed25519(keys, ORIGIN)


@pytest.mark.parametrize(
    "size, accepted",
    [(2**64 - 1, True), (2**64, False), (10**20 - 1, False), (0, True)],
)
def test_checkpoint_sizes_are_uint64(size, accepted):
    root = base64.b64encode(merkle.EMPTY_ROOT).decode()
    body = f"example.org/log\n{size}\n{root}\n"
    if accepted:
        assert parse_checkpoint(body).size == size
    else:
        with pytest.raises(NoteError, match="larger than 2"):
            parse_checkpoint(body)
