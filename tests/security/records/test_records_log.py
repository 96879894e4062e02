"""The records log in a real database (SQLite and PostgreSQL): appends once per record,
inclusion proofs that verify against its signed checkpoint with the audit log's own Merkle
code, and `verify` finding a changed leaf, a forged checkpoint and another key's signature."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from connectors.sources import SourceSpec
from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from security.audit import merkle
from security.audit.note import open_checkpoint
from security.records import Anchor, RecordsLog, load_records_signer
from security.records.digest import canonical, digest
from security.records.log import CHECKPOINTS, LEAVES, new_salt
from tests.support.audit_log import sqlite_spec
from tests.support.postgres import PG_URL

ORIGIN = "medfed.test/records"


@pytest.fixture
def spec(backend: str, data_dir, request) -> SourceSpec:
    if backend == "postgres":
        schema = request.getfixturevalue("pg_schema")
        return SourceSpec(name="gateway", kind="gateway", url=PG_URL, schema=schema)
    return sqlite_spec(data_dir)


async def _log(spec, data_dir, profile="standard"):
    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    signer = load_records_signer(data_dir / "keys", ORIGIN, profile)
    return engine, RecordsLog(engine, signer, ORIGIN, profile), signer


def _anchor(n: int) -> Anchor:
    salt = new_salt()
    record = {"result_id": f"R{n}", "value": 5.5 + n}
    return Anchor(
        "test_results", "hospital-h1", f"R{n}", digest("test_results", record, salt), salt
    )


async def test_each_record_once_proven_against_the_signed_checkpoint(spec, data_dir):
    engine, log, signer = await _log(spec, data_dir)
    try:
        first = await log.append([_anchor(n) for n in range(5)])
        again = await log.append([_anchor(2), _anchor(5)])  # R2 is anchored already
        assert first == [0, 1, 2, 3, 4] and again == [2, 5]
        assert await log.size() == 6
        proof = await log.proof(3)
        opened = open_checkpoint(proof.checkpoint, [signer])
        assert (opened.origin, opened.size, opened.root) == (ORIGIN, 6, proof.root)
        assert merkle.verify_inclusion(3, 6, proof.leaf_hash, proof.proof, proof.root)
        assert not merkle.verify_inclusion(2, 6, proof.leaf_hash, proof.proof, proof.root)
        assert proof.entry["id"] == "R3" and proof.entry["index"] == 3
        check = await log.verify(signer)
        assert check.ok and check.size == 6, check.problems
    finally:
        await engine.dispose()


async def test_verify_finds_a_changed_leaf_and_a_forged_checkpoint(spec, data_dir):
    engine, log, signer = await _log(spec, data_dir)
    try:
        await log.append([_anchor(n) for n in range(4)])
        await log.checkpoint()
        assert (await log.verify(signer)).ok  # positive control
        async with engine.begin() as conn:
            original = (
                await conn.execute(select(LEAVES.c.entry).where(LEAVES.c.idx == 1))
            ).scalar_one()
            forged = (
                b'{"digest":"00","id":"R1","index":1,"kind":"test_results",'
                b'"salt":"00","source":"hospital-h1"}'
            )
            await conn.execute(update(LEAVES).where(LEAVES.c.idx == 1).values(entry=forged))
        check = await log.verify(signer)
        assert not check.ok
        assert check.problems[0].startswith("event 1 does not match its leaf hash"), check.problems
        async with engine.begin() as conn:
            await conn.execute(update(LEAVES).where(LEAVES.c.idx == 1).values(entry=original))
        assert (await log.verify(signer)).ok  # the leaf put back: intact again
        async with engine.begin() as conn:
            await conn.execute(update(CHECKPOINTS).values(root=b"\x00" * 32))
        problems = (await log.verify(signer)).problems
        assert any(p.startswith("checkpoint at size 4: the stored") for p in problems), problems
    finally:
        await engine.dispose()


async def test_a_checkpoint_of_another_key_is_refused(data_dir):
    spec = sqlite_spec(data_dir)
    engine, log, _signer = await _log(spec, data_dir)
    try:
        await log.append([_anchor(0)])
        await log.checkpoint()
        stranger = load_records_signer(data_dir / "other-keys", ORIGIN)
        check = await log.verify(stranger)
        assert not check.ok and check.problems[0].startswith("checkpoint at size 1: "), check
    finally:
        await engine.dispose()


def test_the_canonical_form_is_documented_bytes_and_sm3_in_the_national_profile():
    record = {"b": 1, "a": "葡萄糖", "at": __import__("datetime").datetime(2026, 12, 1, 9, 30)}
    salt = "00" * 16
    assert (
        canonical("test_results", record, salt)
        == (
            "medfed/record/v1\ntest_results\n"
            + salt
            + '\n{"a":"葡萄糖","at":"2026-12-01T09:30:00","b":1}'
        ).encode()
    )
    from cryptography.hazmat.primitives import hashes

    h = hashes.Hash(hashes.SM3())
    h.update(canonical("test_results", record, salt))
    assert digest("test_results", record, salt, "national") == h.finalize().hex()
    assert digest("test_results", record, salt) != digest("test_results", record, "11" * 16)


async def test_a_cut_tail_is_caught_by_the_checkpoint_kept_outside(spec, data_dir):
    """Whoever can write the database deletes the newest leaves with the checkpoints that
    signed them and rewrites the head: the log alone then looks whole, the file of signed
    notes (written as each checkpoint is stored) does not."""
    from sqlalchemy import delete

    from security.audit.outside import Publisher, newest_in_file
    from security.records.log import HEAD, NODES, _frontier_of

    engine, log, signer = await _log(spec, data_dir)
    publisher = Publisher(data_dir / "records")
    log.on_checkpoint = publisher.published
    try:
        await log.append([_anchor(n) for n in range(3)])
        await log.checkpoint()
        await log.append([_anchor(n) for n in range(3, 7)])
        await log.checkpoint()
        await publisher.drain()
        found, refused = newest_in_file(data_dir / "records", [signer], ORIGIN)
        assert refused == [] and found.checkpoint.size == 7
        check = await log.verify(signer, external_note=found.note)
        assert check.ok and check.signed_size == 7  # positive control

        frontier = _frontier_of(b"", 0)
        async with engine.begin() as conn:
            kept = (
                await conn.execute(
                    select(LEAVES.c.leaf_hash).where(LEAVES.c.idx < 3).order_by(LEAVES.c.idx)
                )
            ).scalars()
            for leaf in kept:
                frontier.append(leaf)
            await conn.execute(delete(LEAVES).where(LEAVES.c.idx >= 3))
            await conn.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.size > 3))
            await conn.execute(delete(NODES).where(((NODES.c.idx + 1) * (2**NODES.c.level)) > 3))
            await conn.execute(update(HEAD).values(size=3, frontier=b"".join(frontier.hashes())))
        assert (await log.verify(signer)).ok  # the database alone: nothing to see
        check = await log.verify(signer, external_note=found.note)
        assert not check.ok
        assert any("has 7 events but only 3 are stored" in p for p in check.problems), check
    finally:
        await engine.dispose()
