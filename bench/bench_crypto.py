"""Field-crypto costs under both profiles, and online re-encryption throughput.

* decrypt / encrypt / blind index: microseconds per 1,000 fields (typical 10-40 byte values)
* re-encryption: values/s rewritten on a SQLite bureau (persons, 5 encrypted fields each) after
  ``rotate``: 100,000 values (``--quick``: 10,000), batches of 500, compare-and-set writes
* SM2 checkpoint signature and verification (pure-Python SM2 from gmalg)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from connectors.sources import SourceSpec
from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from connectors.sql.models import bureau
from connectors.sql.reencrypt import ResumeState, count_by_key, reencrypt_source
from security.crypto import BlindIndexer, FieldCipher, KeyRing
from security.crypto.sm2 import SM2Signer

FIELDS = ("name", "id_number", "phone", "birth_date", "address")


def _values(i: int) -> dict[str, str]:
    return {
        "name": f"张{i}号",
        "id_number": f"3301021990{i:07d}X",
        "phone": f"138{i:08d}",
        "birth_date": f"1990-01-{1 + i % 28:02d}",
        "address": f"浙江省杭州市西湖区文三路{i}号",
    }


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def field_costs(profile: str, root: Path) -> dict[str, float]:
    ring = KeyRing.open(root / profile, create=True, profile=profile)
    ring.ensure_source("b")
    cipher, indexer = FieldCipher(ring), BlindIndexer(ring)
    cells = [
        (f"P{i:06d}", f"{name}_enc", _values(i)[name]) for i in range(200) for name in FIELDS
    ]  # 1,000 fields
    blobs = [
        cipher.encrypt(v, source="b", table="persons", column=c, row_key=r) for r, c, v in cells
    ]

    def decrypt_all() -> None:
        for (r, c, _), blob in zip(cells, blobs, strict=True):
            cipher.decrypt(blob, source="b", table="persons", column=c, row_key=r)

    def encrypt_all() -> None:
        for r, c, v in cells:
            cipher.encrypt(v, source="b", table="persons", column=c, row_key=r)

    def index_all() -> None:
        for _, _, v in cells:
            indexer.id_number(v)

    return {
        name: _best(fn, 20) * 1e6
        for name, fn in (("decrypt", decrypt_all), ("encrypt", encrypt_all), ("index", index_all))
    }


async def reencrypt_throughput(profile: str, root: Path, values: int) -> tuple[float, int]:
    data_dir = root / f"re-{profile}"
    spec = SourceSpec(
        "bureau-zj", "bureau", f"sqlite+aiosqlite:///{data_dir.as_posix()}/sources/bureau-zj.db"
    )
    await migrate.upgrade(spec)
    ring = KeyRing.open(data_dir, create=True, profile=profile)
    ring.ensure_source(spec.name)
    cipher = FieldCipher(ring)
    engine = create_source_engine(spec)
    persons = values // len(FIELDS)
    try:
        for start in range(0, persons, 2000):
            rows = []
            for i in range(start, min(start + 2000, persons)):
                psn, plain = f"P{i:07d}", _values(i)
                row = {
                    "psn_no": psn,
                    "person_ref": f"{i:032x}",
                    "id_number_bidx": f"{i:032x}",
                    "gender": "FEMALE",
                    "insuplc_admdvs": "330100",
                }
                row.update(
                    {
                        f"{n}_enc": cipher.encrypt(
                            plain[n],
                            source=spec.name,
                            table="persons",
                            column=f"{n}_enc",
                            row_key=psn,
                        )
                        for n in FIELDS
                    }
                )
                rows.append(row)
            async with engine.begin() as conn:
                await conn.execute(insert(bureau.Person.__table__), rows)
    finally:
        await engine.dispose()
    ring.rotate(spec.name)
    started = time.perf_counter()
    result = await reencrypt_source(
        spec, ring, ResumeState(data_dir / "state.json"), batch=500, progress=False
    )
    elapsed = time.perf_counter() - started
    assert await count_by_key(spec) == {result.target: persons * len(FIELDS)}
    return result.rewritten / elapsed, result.rewritten


def sm2_costs() -> tuple[float, float]:
    signer = SM2Signer.generate("bench")
    message = b"medfed checkpoint\n123456\n" + b"h" * 44 + b"\n"
    signature = signer.sign(message)
    sign = _best(lambda: signer.sign(message), 5)
    verify = _best(lambda: signer.verify(message, signature), 5)
    return sign * 1e3, verify * 1e3


def main(args: argparse.Namespace) -> None:
    values = 10_000 if getattr(args, "quick", False) else 100_000
    with tempfile.TemporaryDirectory(prefix="medfed-bench-crypto-") as tmp:
        root = Path(tmp)
        print(
            f"{'profile':10} {'decrypt/1k':>12} {'encrypt/1k':>12} {'index/1k':>12} "
            f"{'re-encrypt':>14}"
        )
        for profile in ("standard", "national"):
            costs = field_costs(profile, root)
            rate, done = asyncio.run(reencrypt_throughput(profile, root, values))
            print(
                f"{profile:10} {costs['decrypt'] / 1000:9.2f} ms {costs['encrypt'] / 1000:9.2f}"
                f" ms {costs['index'] / 1000:9.2f} ms {rate:9,.0f} val/s  ({done:,} values, "
                f"SQLite)"
            )
        sign_ms, verify_ms = sm2_costs()
        print(
            f"SM2 checkpoint signature: sign {sign_ms:.1f} ms, verify {verify_ms:.1f} ms "
            f"(pure Python, gmalg)"
        )
