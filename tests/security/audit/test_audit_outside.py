"""Checkpoints often and outside: the unsigned tail is bounded by events and seconds, every
stored checkpoint is also in the file of signed notes, cosignatures (C2SP tlog-cosignature)
verify and fail when altered, and the witness cosigns only what extends what it cosigned."""

from __future__ import annotations

import asyncio
import base64

import orjson
import pytest
from sqlalchemy import select

from gateway.audit_http import audit_settings
from gateway.config import ConfigError
from security.audit import merkle
from security.audit.cosign import WitnessKey, load_or_create_witness
from security.audit.log import CHECKPOINTS, AuditLogConfig
from security.audit.note import Checkpoint, NoteError, sign_checkpoint
from security.audit.outside import CheckpointFile, Publisher, newest_in_file
from security.audit.signer import load_or_create_ed25519
from security.audit.witness import WitnessSettings, add_checkpoint, latest
from tests.support.audit_log import ORIGIN, open_log, sqlite_spec


def test_the_default_tail_is_small():
    config = AuditLogConfig()
    assert (config.checkpoint_every, config.checkpoint_seconds) == (100, 5.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("checkpoint_every", "often"),
        ("checkpoint_every", 0),
        ("checkpoint_every", True),
        ("checkpoint_seconds", -1),
        ("checkpoint_seconds", "5"),
        ("checkpoint_dir", 3),
    ],
)
def test_cadence_settings_are_checked_strictly(key, value):
    from gateway.config import Settings

    settings = Settings(
        data_dir=None,
        host="h",
        port=1,
        dev=False,
        sources=(),
        gateway_url="",
        config_path=None,
    )
    with pytest.raises(ConfigError) as raised:
        settings.with_tables(audit={key: value})
    assert raised.value.key == f"audit.{key}"
    ok = settings.with_tables(audit={"checkpoint_every": 50})
    assert audit_settings(ok).log.checkpoint_every == 50  # positive control


async def _checkpoint_sizes(engine) -> list[int]:
    async with engine.connect() as conn:
        return sorted((await conn.execute(select(CHECKPOINTS.c.size))).scalars())


async def test_every_checkpoint_is_signed_within_the_bound_and_written_to_the_file(data_dir):
    engine, log = await open_log(
        sqlite_spec(data_dir), data_dir, checkpoint_every=10, checkpoint_seconds=0.3
    )
    publisher = Publisher(data_dir / "audit")
    log.on_checkpoint = publisher.published
    try:
        for n in range(25):
            await log.append({"n": n})
        assert await _checkpoint_sizes(engine) == [10, 20]  # at most 10 events unsigned
        await asyncio.sleep(0.8)  # ... and for at most 0.3 s
        assert await _checkpoint_sizes(engine) == [10, 20, 25]
    finally:
        await log.close()
        await publisher.drain()  # the file's appends run on threads
    found, refused = newest_in_file(data_dir / "audit", [log.signer], ORIGIN)
    assert refused == [] and found is not None and found.checkpoint.size == 25
    in_file = [orjson.loads(line)["size"] for line in (data_dir / "audit/checkpoints.jsonl").open()]
    assert sorted(set(in_file)) == await _checkpoint_sizes(engine)
    await engine.dispose()


def test_a_note_altered_in_the_file_is_refused_and_named(data_dir):
    signer = load_or_create_ed25519(data_dir / "keys", ORIGIN)
    store = CheckpointFile(data_dir / "audit")
    good = sign_checkpoint(Checkpoint(ORIGIN, 5, b"\1" * 32), signer)
    store.append(5, good)
    store.append(9, good.replace("\n5\n", "\n9\n"))  # the size edited: signature fails
    with open(store.path, "ab") as handle:
        handle.write(b'{"size": 1, "no')  # a line cut short by a crash: skipped
    found, refused = newest_in_file(data_dir / "audit", [signer], ORIGIN)
    assert found is not None and found.checkpoint.size == 5
    assert len(refused) == 1 and "does not verify" in refused[0]


def test_a_cosignature_verifies_and_an_altered_one_does_not(data_dir):
    witness = load_or_create_witness(data_dir / "keys", "witness.test/w1")
    key = WitnessKey.parse((data_dir / "keys/witness.pub").read_text())
    assert key == witness.key
    signer = load_or_create_ed25519(data_dir / "keys", ORIGIN)
    checkpoint = Checkpoint(ORIGIN, 7, b"\2" * 32)
    note = sign_checkpoint(checkpoint, signer)
    line = witness.cosign(checkpoint.body(), timestamp=1_700_000_000)
    assert key.cosigned_at(note + line) == 1_700_000_000
    name, blob = line[2:].split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[5] ^= 1  # another timestamp: the signature no longer covers it
    with pytest.raises(NoteError, match="does not verify"):
        key.cosigned_at(note + f"— {name} {base64.b64encode(bytes(raw)).decode()}\n")
    with pytest.raises(NoteError, match="no cosignature"):
        key.cosigned_at(note)


class _Tree:
    """A log's leaves, for consistency proofs the witness checks."""

    def __init__(self) -> None:
        self.leaves: list[bytes] = []

    def grow(self, n: int) -> None:
        self.leaves += [merkle.leaf_hash(f"e{len(self.leaves) + i}".encode()) for i in range(n)]

    def root(self, size: int) -> bytes:
        return merkle.root_from_leaf_hashes(self.leaves[:size])

    def proof(self, old: int, new: int) -> list[bytes]:
        return [
            merkle.root_from_leaf_hashes(self.leaves[s:e])
            for s, e in merkle.consistency_ranges(old, new)
        ]


def _body(old: int, proof: list[bytes], note: str) -> bytes:
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n{note}".encode()


async def test_the_witness_cosigns_only_what_extends_what_it_cosigned(data_dir):
    engine, log = await open_log(sqlite_spec(data_dir), data_dir)  # its gateway database
    await log.close()
    signer = load_or_create_ed25519(data_dir / "log-keys", ORIGIN)
    witness = load_or_create_witness(data_dir / "keys", "witness.test/w1")
    settings = WitnessSettings("witness.test/w1", {ORIGIN: signer.verifier()})
    tree = _Tree()
    tree.grow(5)

    def note(size: int, root: bytes | None = None, origin: str = ORIGIN) -> str:
        return sign_checkpoint(Checkpoint(origin, size, root or tree.root(size)), signer)

    first = await add_checkpoint(engine, settings, witness, _body(0, [], note(5)))
    assert first.status == 200 and witness.key.cosigned_at(note(5) + first.body)
    tree.grow(4)
    # The old size must be the one it holds: 409 tells it.
    stale = await add_checkpoint(engine, settings, witness, _body(0, [], note(9)))
    assert (stale.status, stale.body, stale.content_type) == (409, "5\n", "text/x.tlog.size")
    # A proof that does not connect the roots: 422.
    wrong = await add_checkpoint(engine, settings, witness, _body(5, [b"\0" * 32], note(9)))
    assert wrong.status == 422
    # A fork at the same size: 409.
    fork = await add_checkpoint(engine, settings, witness, _body(5, [], note(5, b"\3" * 32)))
    assert fork.status == 409
    # Not signed by the log's key: 403; a log it does not witness: 404.
    other = load_or_create_ed25519(data_dir / "other-keys", ORIGIN)
    forged = sign_checkpoint(Checkpoint(ORIGIN, 9, tree.root(9)), other)
    assert (await add_checkpoint(engine, settings, witness, _body(5, [], forged))).status == 403
    unknown = sign_checkpoint(Checkpoint("elsewhere/log", 1, b"\1" * 32), signer)
    assert (await add_checkpoint(engine, settings, witness, _body(0, [], unknown))).status == 404
    # The real extension: cosigned, and held.
    grown = await add_checkpoint(engine, settings, witness, _body(5, tree.proof(5, 9), note(9)))
    assert grown.status == 200, grown.body
    held = await latest(engine, ORIGIN)
    assert held.status == 200 and held.body.startswith(note(9).split("\n\n")[0])
    assert witness.key.cosigned_at(held.body)
    # It never goes back: the smaller checkpoint now needs old 9, and 9 > 5 is refused.
    back = await add_checkpoint(engine, settings, witness, _body(9, [], note(5)))
    assert back.status == 400
    await engine.dispose()
