"""``medfed audit``: rows edited, deleted, moved or inserted by hand are named by index;
an externally kept checkpoint is checked for consistency, online and offline."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gateway.cli import main
from security.audit import merkle
from security.audit.log import make_entry
from security.audit.note import Checkpoint, sign_checkpoint
from security.audit.signer import load_or_create_ed25519
from tests.support.audit import append_events

ORIGIN = "medfed.local/audit"
EVENTS = 40


# The command reads the embedded defaults, whatever the environment says.
pytestmark = pytest.mark.usefixtures("embedded_cli")


def _medfed(data_dir: Path, *args: str, capsys) -> tuple[int, str]:
    code = main(["--data-dir", str(data_dir), "audit", *args])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def logged(data_dir: Path) -> Path:
    append_events(data_dir, EVENTS)
    return data_dir


def _db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "gateway.db", isolation_level=None)


def _entry(db: sqlite3.Connection, idx: int) -> bytes:
    return db.execute("SELECT entry FROM audit_events WHERE idx = ?", (idx,)).fetchone()[0]


def _forge(idx: int, n: int) -> tuple[int, bytes, bytes, str]:
    entry = make_entry(b'{"n":%d,"purpose":"TREATMENT"}' % n, idx, "2026-11-23T00:00:00.000000Z")
    return idx, merkle.leaf_hash(entry), entry, "2026-11-23 00:00:00.000000"


def test_intact_log_verifies(logged, capsys) -> None:
    code, out = _medfed(logged, "verify", capsys=capsys)
    assert code == 0
    assert f"intact: {EVENTS} events" in out and "4 signed checkpoints verified" in out


def _edit(db) -> None:
    entry = _entry(db, 17).replace(b'"n":17', b'"n":99')
    db.execute("UPDATE audit_events SET entry = ? WHERE idx = 17", (entry,))


def _delete(db) -> None:
    db.execute("DELETE FROM audit_events WHERE idx = 17")


def _reorder(db) -> None:
    db.execute("UPDATE audit_events SET idx = -1 WHERE idx = 12")
    db.execute("UPDATE audit_events SET idx = 12 WHERE idx = 25")
    db.execute("UPDATE audit_events SET idx = 25 WHERE idx = -1")


def _insert(db) -> None:
    for idx in range(EVENTS - 1, 19, -1):
        db.execute("UPDATE audit_events SET idx = idx + 1 WHERE idx = ?", (idx,))
    db.execute("INSERT INTO audit_events VALUES (?, ?, ?, ?)", _forge(20, 1000))


def _append_forged(db) -> None:
    db.execute("INSERT INTO audit_events VALUES (?, ?, ?, ?)", _forge(EVENTS, 1000))


def _renumber_after_delete(db) -> None:
    db.execute("DELETE FROM audit_events WHERE idx = 17")
    for idx in range(18, EVENTS):
        db.execute("UPDATE audit_events SET idx = idx - 1 WHERE idx = ?", (idx,))


def _truncate(db) -> None:
    db.execute("DELETE FROM audit_events WHERE idx >= 33")


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        (_edit, 17),
        (_delete, 17),
        (_reorder, 12),
        (_insert, 20),
        (_append_forged, EVENTS),
        (_renumber_after_delete, 17),
        (_truncate, 33),
    ],
)
def test_tampering_is_named_by_its_first_index(logged, capsys, tamper, first_bad) -> None:
    with _db(logged) as db:
        tamper(db)
    code, out = _medfed(logged, "verify", capsys=capsys)
    assert code == 1
    assert f"first bad event index {first_bad} " in out


def test_a_rewrite_with_a_recomputed_hash_is_caught_by_the_stored_tree(logged, capsys) -> None:
    with _db(logged) as db:
        _, leaf, entry, _ = _forge(17, 99)
        db.execute("UPDATE audit_events SET entry = ?, leaf_hash = ? WHERE idx = 17", (entry, leaf))
    code, out = _medfed(logged, "verify", capsys=capsys)
    assert code == 1
    assert "first bad event index 16 " in out  # the pair 16-17 is the finest stored subtree


def test_an_edited_checkpoint_is_caught(logged, capsys) -> None:
    with _db(logged) as db:
        note = db.execute("SELECT note FROM audit_checkpoints WHERE size = 20").fetchone()[0]
        db.execute(
            "UPDATE audit_checkpoints SET note = ? WHERE size = 20",
            (note.replace("\n20\n", "\n21\n"),),
        )
    code, out = _medfed(logged, "verify", capsys=capsys)
    assert code == 1 and "checkpoint at size 20" in out and "does not verify" in out


def test_an_external_checkpoint_is_consistent_with_the_grown_log(logged, capsys, tmp_path) -> None:
    code, note = _medfed(logged, "checkpoint", capsys=capsys)
    assert code == 0 and note.startswith(f"{ORIGIN}\n{EVENTS}\n")
    kept = tmp_path / "kept.note"
    kept.write_text(note)
    # The security team keeps the key too, outside the gateway's data directory.
    key = (logged / "keys" / "audit-log.pub").read_text().strip()

    append_events(logged, 13, start=EVENTS)
    code, out = _medfed(logged, "verify", "--checkpoint", str(kept), "--key", key, capsys=capsys)
    assert code == 0
    assert f"your checkpoint of size {EVENTS} is consistent" in out

    # Offline: nothing but two notes, a proof and the key.
    code, proof = _medfed(logged, "proof", "--from", str(EVENTS), capsys=capsys)
    assert code == 0
    (tmp_path / "proof.json").write_text(proof)
    new = tmp_path / "new.note"
    new.write_text(json.loads(proof)["checkpoint"])
    code, out = _medfed(
        logged,
        "check-consistency",
        str(kept),
        str(new),
        str(tmp_path / "proof.json"),
        "--key",
        key,
        capsys=capsys,
    )
    assert code == 0 and f"extends your checkpoint at {EVENTS}" in out

    forged = json.loads(proof)
    forged["consistency_path"][0] = forged["consistency_path"][1]
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    code, out = _medfed(
        logged,
        "check-consistency",
        str(kept),
        str(new),
        str(tmp_path / "forged.json"),
        "--key",
        key,
        capsys=capsys,
    )
    assert code == 1 and "NOT consistent" in out


def test_a_forked_external_checkpoint_fails(logged, capsys, tmp_path) -> None:
    """A checkpoint the gateway once showed someone, signed but for other events (a fork)."""
    signer = load_or_create_ed25519(logged / "keys", ORIGIN)
    fork = sign_checkpoint(Checkpoint(ORIGIN, 30, merkle.leaf_hash(b"another history")), signer)
    (tmp_path / "fork.note").write_text(fork)
    code, out = _medfed(
        logged, "verify", "--checkpoint", str(tmp_path / "fork.note"), capsys=capsys
    )
    assert code == 1 and "external checkpoint does not match" in out


def test_a_checkpoint_signed_by_another_key_is_refused(logged, capsys, tmp_path) -> None:
    other = load_or_create_ed25519(tmp_path / "other-keys", ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, 5, merkle.EMPTY_ROOT), other)
    (tmp_path / "other.note").write_text(note)
    code, out = _medfed(
        logged, "verify", "--checkpoint", str(tmp_path / "other.note"), capsys=capsys
    )
    assert code == 1 and "no signature by a trusted key" in out


def test_inclusion_proof_json_verifies_against_its_checkpoint(logged, capsys) -> None:
    import base64

    code, out = _medfed(logged, "proof", "--index", "7", capsys=capsys)
    assert code == 0
    proof = json.loads(out)
    leaf = merkle.leaf_hash(proof["entry"].encode())
    assert base64.b64decode(proof["leaf_hash"]) == leaf
    assert json.loads(proof["entry"])["event"] == {"n": 7, "purpose": "TREATMENT"}
    root = base64.b64decode(proof["checkpoint"].split("\n")[2])
    path = [base64.b64decode(h) for h in proof["inclusion_path"]]
    assert merkle.verify_inclusion(7, EVENTS, leaf, path, root)

    code, out = _medfed(logged, "proof", "--index", str(EVENTS), capsys=capsys)
    assert code == 2 and "not in a log of" in out
