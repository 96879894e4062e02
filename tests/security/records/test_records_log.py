"""The records log in a real database (SQLite and PostgreSQL): appends once per record,
inclusion proofs that verify against its signed checkpoint with the audit log's own Merkle
code, and `verify` finding a changed leaf, a forged checkpoint and another key's signature."""

from __future__ import annotations

import pytest
from sqlalchemy import update

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
            forged = (
                b'{"digest":"00","id":"R1","index":1,"kind":"test_results",'
                b'"salt":"00","source":"hospital-h1"}'
            )
            await conn.execute(update(LEAVES).where(LEAVES.c.idx == 1).values(entry=forged))
        check = await log.verify(signer)
        assert not check.ok and "leaf 1 does not match its entry" in check.problems
        async with engine.begin() as conn:
            await conn.execute(update(CHECKPOINTS).values(root=b"\x00" * 32))
        assert any("checkpoint 4" in p for p in (await log.verify(signer)).problems)
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
        assert not check.ok and "not signed by the records log's key" in check.problems[0]
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
