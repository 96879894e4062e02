"""Rotation without downtime, against real source databases (SQLite, and PostgreSQL when the
test server answers): a gateway keeps reading, writing and looking people up in another task
while ``medfed keys rotate``/``reencrypt``/``retire`` and the index rotation run."""

from __future__ import annotations

import asyncio
import base64
import json
import random

import pytest

from connectors.sql.reencrypt import ResumeState, count_by_key, reencrypt_source
from security.crypto import BlindIndexer, KeyRing
from tests.support.crypto import (
    Gateway,
    id_number,
    medfed,
    person_values,
    pick,
    seed_filings,
    seed_persons,
    write_config,
)

PERSONS = 120


@pytest.fixture(params=["standard", "national"])
def profile(request) -> str:
    return request.param


@pytest.fixture
async def world(make_spec, data_dir, tmp_path, profile):
    """A bureau with encrypted persons and the national platform with their filings."""
    bureau, plat = make_spec("bureau", "bureau-zj"), make_spec("platform", "platform")
    keyring = KeyRing.open(data_dir, create=True, profile=profile)
    expected = await seed_persons(bureau, keyring, PERSONS)
    await seed_filings(plat, keyring, list(range(0, PERSONS, 3)))
    config = write_config(tmp_path / "medfed.toml", [bureau, plat], profile)
    return bureau, plat, config, expected


class Load:
    """Reads, lookups and writes in a loop until stopped; records every failure."""

    def __init__(self, gateway: Gateway, expected: dict) -> None:
        self.gateway, self.expected = gateway, expected
        self.failures: list[str] = []
        self.reads = self.writes = self.lookups = 0
        self.stop = asyncio.Event()
        self.tick = asyncio.Event()
        self.rng = random.Random(7)

    async def more(self, n: int) -> None:
        """Return once ``n`` more read-and-lookup rounds have completed."""
        target = self.lookups + n
        while self.lookups < target:
            self.tick.clear()
            await self.tick.wait()

    async def run(self) -> None:
        while not self.stop.is_set():
            psn = pick(self.rng, self.expected)
            try:
                got = await self.gateway.read(psn)
                if got != self.expected[psn]:
                    self.failures.append(f"read {psn}: {got} != {self.expected[psn]}")
                self.reads += 1
                found = await self.gateway.lookup(self.expected[psn]["id_number"])
                if found != [psn]:
                    self.failures.append(f"lookup {psn} found {found}")
                self.lookups += 1
                if self.rng.random() < 0.3:
                    name = f"改名{self.rng.randrange(10**6)}"
                    await self.gateway.rename(psn, name)
                    self.expected[psn] = {**self.expected[psn], "name": name}
                    self.writes += 1
            except Exception as exc:  # any failure is what this test is looking for
                self.failures.append(f"{psn}: {type(exc).__name__}: {exc}")
            self.tick.set()
            await asyncio.sleep(0)


async def cli(config, data_dir, *args):
    return await asyncio.to_thread(medfed, config, data_dir, *args)


async def test_rotate_and_reencrypt_under_load(world, data_dir, profile):
    bureau, _, config, expected = world
    gateway = Gateway(bureau, data_dir)
    load = Load(gateway, expected)
    task = asyncio.create_task(load.run())
    try:
        await load.more(20)
        code, out, err = await cli(config, data_dir, "keys", "rotate", "--source", "bureau-zj")
        assert code == 0, err
        assert "dk-bureau-zj-1" in out and "dk-bureau-zj-2" in out
        reads_before = load.reads
        code, out, err = await cli(config, data_dir, "keys", "reencrypt", "--batch", "16")
        assert code == 0, err + out
        reads_during = load.reads - reads_before
        # Keep the load going a little after re-encryption finished.
        await load.more(20)
    finally:
        load.stop.set()
        await task
    assert load.failures == []
    assert reads_during > 0 and load.writes > 0
    # No value is lost: every person reads back as last written.
    for psn, values in expected.items():
        assert await gateway.read(psn) == values
    await gateway.close()
    counts = await count_by_key(bureau)
    assert counts == {"dk-bureau-zj-2": PERSONS * 5}
    code, out, _ = await cli(config, data_dir, "keys", "status")
    line = next(x for x in out.splitlines() if x.startswith("dk-bureau-zj-1 "))
    values, encryptions = line.split()[-2:]  # the old key protects nothing, made some
    assert values == "0" and " old " in line and int(encryptions.replace(",", "")) >= PERSONS * 5
    code, out, err = await cli(config, data_dir, "keys", "retire", "dk-bureau-zj-1")
    assert code == 0, err
    fresh = Gateway(bureau, data_dir)
    try:
        for psn in list(expected)[:10]:
            assert await fresh.read(psn) == expected[psn]
    finally:
        await fresh.close()
    if profile == "national":
        assert KeyRing.load(data_dir).key("dk-bureau-zj-2").algorithm == "SM4-GCM"


async def test_retire_refuses_while_the_key_protects_values(world, data_dir):
    _, _, config, _ = world
    assert (await cli(config, data_dir, "keys", "rotate"))[0] == 0
    code, _, err = await cli(config, data_dir, "keys", "retire", "dk-bureau-zj-1")
    assert code == 2
    assert f"dk-bureau-zj-1 still protects {PERSONS * 5} values" in err
    code, _, err = await cli(config, data_dir, "keys", "retire", "dk-bureau-zj-2")
    assert code == 2 and "current" in err
    assert KeyRing.load(data_dir).key("dk-bureau-zj-1")  # still there


async def test_interrupted_reencrypt_resumes(world, data_dir):
    bureau, _, config, expected = world
    assert (await cli(config, data_dir, "keys", "rotate", "--source", "bureau-zj"))[0] == 0
    state = ResumeState(data_dir / "state" / "reencrypt.json")
    batches = []

    def interrupt(done: int) -> None:
        batches.append(done)
        if len(batches) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await reencrypt_source(bureau, KeyRing.load(data_dir), state, batch=10, on_batch=interrupt)
    saved = json.loads(state.path.read_text())["bureau-zj"]
    assert saved == {"target": "dk-bureau-zj-2", "table": "persons", "after": "P000029"}
    assert (await count_by_key(bureau))["dk-bureau-zj-2"] == 30 * 5
    code, out, err = await cli(
        config, data_dir, "keys", "reencrypt", "--source", "bureau-zj", "--batch", "10"
    )
    assert code == 0, err
    assert "resumed at persons after 'P000029'" in out
    assert f"{(PERSONS - 30) * 5} values rewritten" in out
    assert await count_by_key(bureau) == {"dk-bureau-zj-2": PERSONS * 5}
    assert not json.loads(state.path.read_text())  # nothing left to resume
    gateway = Gateway(bureau, data_dir)
    try:
        for psn in expected:
            assert await gateway.read(psn) == expected[psn]
    finally:
        await gateway.close()


async def test_rotate_kek_and_data_keys_together(world, data_dir):
    bureau, plat, config, expected = world
    code, out, err = await cli(config, data_dir, "keys", "rotate", "--kek")
    assert code == 0, err
    assert "KEK now kek-2" in out
    assert (await cli(config, data_dir, "keys", "reencrypt"))[0] == 0
    code, out, err = await cli(config, data_dir, "keys", "retire", "kek-1")
    assert code == 0, err
    gateway = Gateway(bureau, data_dir)
    try:
        psn = next(iter(expected))
        assert await gateway.read(psn) == expected[psn]
    finally:
        await gateway.close()
    assert await count_by_key(plat) == {"dk-platform-2": PERSONS // 3}
    if bureau.is_sqlite:  # no key of any kind reaches the database file
        kek = json.loads((data_dir / "keys" / "kek.json").read_text())["keys"]["kek-2"]["key"]
        ring = KeyRing.load(data_dir)
        secrets = [
            base64.b64decode(kek),
            ring.linkage_key,
            *(k.material for k in ring.data_keys.values()),
        ]
        database = (data_dir / "sources" / "bureau-zj.db").read_bytes()
        for secret in secrets:
            assert secret not in database and secret.hex().encode() not in database


async def test_blind_index_rotation_keeps_lookups_working(world, data_dir):
    bureau, plat, config, expected = world
    ring = KeyRing.load(data_dir)
    person_refs = {
        psn: BlindIndexer(ring).person_ref(v["id_number"]) for psn, v in expected.items()
    }
    gateway = Gateway(bureau, data_dir)
    load = Load(gateway, expected)
    task = asyncio.create_task(load.run())
    try:
        await load.more(20)
        code, out, err = await cli(config, data_dir, "keys", "rotate-index")
        assert code == 0, err
        # Dual lookup: both keys' indexes are accepted while nothing is recomputed yet.
        await load.more(20)
        code, out, err = await cli(config, data_dir, "keys", "recompute", "--batch", "16")
        assert code == 0, err + out
        assert "bi-1 retired" in out
        await load.more(20)
    finally:
        load.stop.set()
        await task
        await gateway.close()
    assert load.failures == []
    ring = KeyRing.load(data_dir)
    indexer = BlindIndexer(ring)
    assert ring.index_current == "bi-2" and ring.index_previous is None
    # personIds did not change; lookups are single again and find everyone.
    for psn, values in expected.items():
        assert indexer.person_ref(values["id_number"]) == person_refs[psn]
        assert len(indexer.id_number_candidates(values["id_number"])) == 1
    fresh = Gateway(bureau, data_dir)
    try:
        for psn, values in list(expected.items())[:30]:
            assert await fresh.lookup(values["id_number"]) == [psn]
    finally:
        await fresh.close()
    # Filings have no ID number beside their index: they were mapped through the bureau's.
    from sqlalchemy import select

    from connectors.sql.engine import create_source_engine
    from connectors.sql.models import platform

    engine = create_source_engine(plat)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(platform.Filing.filing_id, platform.Filing.id_number_bidx)
                )
            ).all()
    finally:
        await engine.dispose()
    assert rows and all(bidx == indexer.id_number(id_number(int(fid[1:]))) for fid, bidx in rows)


async def test_recompute_refuses_to_finish_with_unmapped_indexes(make_spec, data_dir, tmp_path):
    """A filing whose person is in no configured source keeps the old key accepted."""
    plat = make_spec("platform", "platform")
    ring = KeyRing.open(data_dir, create=True)
    await seed_filings(plat, ring, [1, 2])
    config = write_config(tmp_path / "medfed.toml", [plat], "standard")
    assert (await cli(config, data_dir, "keys", "rotate-index"))[0] == 0
    code, out, _ = await cli(config, data_dir, "keys", "recompute")
    assert code == 1 and "2 indexes have no plaintext" in out
    assert KeyRing.load(data_dir).index_previous == "bi-1"


def test_person_values_are_distinct():
    assert person_values(1) != person_values(2)
