"""A ciphertext opens only in the source that wrote it, and re-encryption never launders one.

Row keys are institution-local numbers (``P000003`` exists at every bureau), so a value copied
from one source's database into the same cell of another must fail there, in the version-2
format (the source is in the associated data) and in version 1 (the key's owner is checked).
"""

from __future__ import annotations

import asyncio
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update

from connectors.sql.engine import create_source_engine
from connectors.sql.reencrypt import ResumeState, count_by_key_and_version, reencrypt_source
from security.crypto import DecryptionError, FieldCipher, KeyRing
from tests.support.crypto import PERSONS, Gateway, seed_persons

N = 12
ROW = "P000003"
CELL = {"table": "persons", "column": "name_enc", "row_key": ROW}


@pytest.fixture
async def bureaus(make_spec, data_dir):
    a, b = make_spec("bureau", "bureau-a"), make_spec("bureau", "bureau-b")
    keyring = KeyRing.open(data_dir, create=True)
    expected = {"bureau-a": await seed_persons(a, keyring, N)}
    expected["bureau-b"] = await seed_persons(b, keyring, N)
    return a, b, keyring, expected


async def cell(spec, row_key: str = ROW) -> bytes:
    engine = create_source_engine(spec)
    try:
        async with engine.connect() as conn:
            query = select(PERSONS.c.name_enc).where(PERSONS.c.psn_no == row_key)
            return bytes((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def plant(spec, blob: bytes, row_key: str = ROW) -> None:
    engine = create_source_engine(spec)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(PERSONS).where(PERSONS.c.psn_no == row_key).values(name_enc=blob)
            )
    finally:
        await engine.dispose()


def v1_ciphertext(keyring: KeyRing, source: str, value: str) -> bytes:
    """A value as the first ciphertext format wrote it (no source in the associated data)."""
    key = keyring.current_key(source)
    header = bytes((1, len(key.key_id))) + key.key_id.encode()
    nonce = os.urandom(12)
    aad = b"%s|persons|name_enc|%s" % (header, ROW.encode())
    return header + nonce + AESGCM(key.material).encrypt(nonce, value.encode(), aad)


async def test_a_value_copied_from_another_source_into_the_same_cell_does_not_open(bureaus):
    a, b, keyring, expected = bureaus
    stolen = await cell(a)
    await plant(b, stolen)
    data_dir = keyring.path.parent.parent
    gateway_b, gateway_a = Gateway(b, data_dir), Gateway(a, data_dir)
    try:
        with pytest.raises(DecryptionError, match="key of source 'bureau-a', not of 'bureau-b'"):
            await gateway_b.read(ROW)
        # Positive controls: the value still opens at its own source, and B's other rows open.
        assert (await gateway_a.read(ROW))["name"] == expected["bureau-a"][ROW]["name"]
        assert await gateway_b.read("P000004") == expected["bureau-b"]["P000004"]
    finally:
        await gateway_a.close()
        await gateway_b.close()


async def test_a_first_format_value_of_another_source_is_refused_too(bureaus):
    _, _, keyring, _ = bureaus
    cipher = FieldCipher(keyring)
    theirs = v1_ciphertext(keyring, "bureau-a", "张三")
    with pytest.raises(DecryptionError, match="key of source 'bureau-a'"):
        cipher.decrypt(theirs, source="bureau-b", **CELL)
    assert cipher.decrypt(theirs, source="bureau-a", **CELL) == "张三"  # positive control


async def test_reencrypt_stops_at_a_planted_value_and_does_not_launder_it(bureaus, data_dir):
    a, b, keyring, _ = bureaus
    stolen = await cell(a)
    await plant(b, stolen)
    keyring.rotate("bureau-b")
    state = ResumeState(data_dir / "state" / "reencrypt.json")
    with pytest.raises(DecryptionError, match=rf"persons\.name_enc\[{ROW}\]"):
        await reencrypt_source(b, keyring, state, batch=4, grace=0.01)
    assert await cell(b) == stolen  # left exactly as planted, never re-encrypted as B's
    with pytest.raises(DecryptionError):
        FieldCipher(keyring).decrypt(stolen, source="bureau-b", **CELL)
    # Positive control: with the planted value gone, the same run completes.
    await plant(b, FieldCipher(keyring).encrypt("张三", source="bureau-b", **CELL))
    result = await reencrypt_source(b, keyring, state, batch=4, grace=0.01)
    assert not result.remaining


async def test_reencrypt_moves_first_format_values_to_the_second(bureaus, data_dir):
    _, b, keyring, _ = bureaus
    await plant(b, v1_ciphertext(keyring, "bureau-b", "张三"))
    current = keyring.current_key("bureau-b").key_id
    assert (await count_by_key_and_version(b))[(current, 1)] == 1
    state = ResumeState(data_dir / "state" / "reencrypt.json")
    result = await reencrypt_source(b, keyring, state, batch=4, grace=0.01)
    assert result.rewritten == 1 and not result.remaining
    assert await count_by_key_and_version(b) == {(current, 2): N * 5}
    assert FieldCipher(keyring).decrypt(await cell(b), source="bureau-b", **CELL) == "张三"


async def test_a_rotation_during_reencrypt_converges_on_the_newest_key(bureaus, data_dir):
    _, b, keyring, expected = bureaus
    keyring.rotate("bureau-b")  # dk-bureau-b-2, the run's target
    writer = Gateway(b, data_dir)  # a gateway process that keeps writing during the run
    rotated = asyncio.Event()
    renames = 0

    def on_batch(done: int) -> None:
        if not rotated.is_set():
            KeyRing.load(data_dir).rotate("bureau-b")  # dk-bureau-b-3, made by another process
            rotated.set()

    async def write() -> None:
        nonlocal renames
        await rotated.wait()
        writer.keyring.refresh(force=True)
        for i in range(N - 1, 0, -1):  # rows ahead of the sweep, under the newest key
            psn = f"P{i:06d}"
            await writer.rename(psn, f"改名{i}")
            expected["bureau-b"][psn] = {**expected["bureau-b"][psn], "name": f"改名{i}"}
            renames += 1
            await asyncio.sleep(0)

    state = ResumeState(data_dir / "state" / "reencrypt.json")
    try:
        task = asyncio.create_task(write())
        result = await reencrypt_source(b, keyring, state, batch=2, on_batch=on_batch, grace=0.01)
        await task
    finally:
        await writer.close()
    assert renames == N - 1
    assert not result.remaining and result.target == "dk-bureau-b-3"
    # Nothing was moved back to the older key: every value ends under the newest one.
    assert await count_by_key_and_version(b) == {("dk-bureau-b-3", 2): N * 5}
    reader = Gateway(b, data_dir)
    try:
        for psn, values in expected["bureau-b"].items():
            assert await reader.read(psn) == values
    finally:
        await reader.close()
