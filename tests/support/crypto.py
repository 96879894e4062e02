"""Helpers for the crypto tests: seed real source databases with encrypted rows, write a
configuration naming them, and run ``medfed`` commands in-process."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import random
from datetime import date, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import insert, select, update

from connectors.sources import SourceSpec
from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from connectors.sql.models import bureau, platform
from gateway import cli
from security.crypto import BlindIndexer, FieldCipher, KeyRing

PERSON_FIELDS = ("name", "id_number", "phone", "birth_date", "address")
PERSONS = bureau.Person.__table__
FILINGS = platform.Filing.__table__


def write_config(path: Path, specs: list[SourceSpec], profile: str) -> Path:
    lines = ["[crypto]", f'profile = "{profile}"', ""]
    for spec in specs:
        lines += [
            "[[sources]]",
            f'name = "{spec.name}"',
            f'kind = "{spec.kind}"',
            f'url = "{spec.url}"',
        ]
        if spec.schema:
            lines.append(f'schema = "{spec.schema}"')
        if spec.kind == "bureau":
            lines.append('region = "330000"')
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def medfed(config: Path, data_dir: Path, *args: str) -> tuple[int, str, str]:
    """Run ``medfed --config C --data-dir D ARGS`` in-process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["--config", str(config), "--data-dir", str(data_dir), *args])
    return code, out.getvalue(), err.getvalue()


def id_number(i: int) -> str:
    return f"3301021990{i:07d}X"


def person_values(i: int, version: int = 0) -> dict[str, str]:
    return {
        "name": f"张{i}号" + ("" if not version else f"-{version}"),
        "id_number": id_number(i),
        "phone": f"138{i:08d}",
        "birth_date": f"1990-01-{1 + i % 28:02d}",
        "address": f"杭州市西湖区{i}号",
    }


async def seed_persons(spec: SourceSpec, keyring: KeyRing, n: int) -> dict[str, dict[str, str]]:
    """``n`` persons in a bureau source, every personal field encrypted; returns the plain
    values by ``psn_no``."""
    await migrate.upgrade(spec)
    keyring.ensure_source(spec.name)
    cipher, indexer = FieldCipher(keyring), BlindIndexer(keyring)
    expected, rows = {}, []
    for i in range(n):
        psn = f"P{i:06d}"
        values = person_values(i)
        expected[psn] = values
        row = {
            "psn_no": psn,
            "person_ref": indexer.person_ref(values["id_number"]),
            "id_number_bidx": indexer.id_number(values["id_number"]),
            "phone_bidx": indexer.phone(values["phone"]),
            "gender": "MALE",
            "insuplc_admdvs": "330100",
        }
        for name in PERSON_FIELDS:
            row[f"{name}_enc"] = cipher.encrypt(
                values[name], source=spec.name, table="persons", column=f"{name}_enc", row_key=psn
            )
        rows.append(row)
    engine = create_source_engine(spec)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(PERSONS), rows)
    finally:
        await engine.dispose()
    return expected


async def seed_filings(spec: SourceSpec, keyring: KeyRing, ids: list[int]) -> None:
    """Filings at the national platform: an ID-number index with no ID number beside it."""
    await migrate.upgrade(spec)
    keyring.ensure_source(spec.name)
    cipher, indexer = FieldCipher(keyring), BlindIndexer(keyring)
    rows = []
    for i in ids:
        fid = f"F{i:06d}"
        rows.append(
            {
                "filing_id": fid,
                "person_ref": indexer.person_ref(id_number(i)),
                "id_number_bidx": indexer.id_number(id_number(i)),
                "name_enc": cipher.encrypt(
                    f"张{i}号", source=spec.name, table="filings", column="name_enc", row_key=fid
                ),
                "insuplc_admdvs": "330100",
                "mdtrtarea_admvs": "370100",
                "category": "RESIDENT",
                "channel": "APP",
                "status": "ACTIVE",
                "filed_at": datetime(2025, 1, 1),
                "valid_from": date(2025, 1, 1),
            }
        )
    engine = create_source_engine(spec)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(FILINGS), rows)
    finally:
        await engine.dispose()


class Gateway:
    """What a serving gateway does to a bureau: read and decrypt a person, look one up by ID
    number (accepting every candidate index), and update a name. It has its own keyring
    object, as a separate process would."""

    def __init__(self, spec: SourceSpec, data_dir: Path) -> None:
        self.spec = spec
        self.keyring = KeyRing.load(data_dir)
        self.cipher = FieldCipher(self.keyring)
        self.indexer = BlindIndexer(self.keyring)
        self.engine = create_source_engine(spec)

    async def read(self, psn: str) -> dict[str, str]:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(PERSONS).where(PERSONS.c.psn_no == psn))).one()
        return {
            name: self.cipher.decrypt(
                bytes(getattr(row, f"{name}_enc")),
                source=self.spec.name,
                table="persons",
                column=f"{name}_enc",
                row_key=psn,
            )
            for name in PERSON_FIELDS
        }

    async def lookup(self, id_no: str) -> list[str]:
        candidates = self.indexer.id_number_candidates(id_no)
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(PERSONS.c.psn_no).where(PERSONS.c.id_number_bidx.in_(candidates))
            )
            return [r[0] for r in rows]

    async def rename(self, psn: str, name: str) -> None:
        blob = self.cipher.encrypt(
            name, source=self.spec.name, table="persons", column="name_enc", row_key=psn
        )
        async with self.engine.begin() as conn:
            await conn.execute(update(PERSONS).where(PERSONS.c.psn_no == psn).values(name_enc=blob))

    async def close(self) -> None:
        await self.engine.dispose()


def pick(rng: random.Random, expected: dict) -> str:
    return rng.choice(sorted(expected))


def v1_keyring(data_dir) -> tuple[bytes, bytes]:
    """A keyring as the foundation wrote it, and a ciphertext under it."""
    data_key, linkage = os.urandom(32), os.urandom(32)
    path = KeyRing.location(data_dir)
    path.parent.mkdir(parents=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {
                "format": "medfed-keyring/1",
                "linkage": {"id": "lk-1", "key": base64.b64encode(linkage).decode()},
                "data_keys": {
                    "dk-bureau-zj-1": {
                        "alg": "AES-256-GCM",
                        "key": base64.b64encode(data_key).decode(),
                    }
                },
                "current": {"bureau-zj": "dk-bureau-zj-1"},
            },
            handle,
        )
    header = b"\x01\x0edk-bureau-zj-1"
    nonce = os.urandom(12)
    blob = (
        header
        + nonce
        + AESGCM(data_key).encrypt(nonce, "张三".encode(), header + b"|persons|name_enc|P1")
    )
    return linkage, blob
