"""Field-crypto costs under both profiles, and online re-encryption throughput.

* decrypt / encrypt / blind index: per 1,000 fields (typical 10-40 byte values); decryption
  of the version-2 format against ``FieldCipher.decrypt`` as it was before source binding
  (kept in :class:`_BeforeCipher`), alternating rounds
* re-encryption: values/s rewritten on a SQLite bureau (persons, 5 encrypted fields each) after
  ``rotate``: 100,000 values (``--quick``: 10,000), batches of 500, compare-and-set writes
* SM2 checkpoint signature and verification (pure-Python SM2 from gmalg)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from sqlalchemy import insert

from connectors.sources import SourceSpec
from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from connectors.sql.models import bureau
from connectors.sql.reencrypt import ResumeState, count_by_key, reencrypt_source
from security.crypto import BlindIndexer, FieldCipher, KeyRing
from security.crypto.algorithms import aead_for
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


def _v1_blob(key, value: str, column: str, row_key: str) -> bytes:
    """A value as the first ciphertext format wrote it (no source in the associated data)."""
    header = bytes((1, len(key.key_id))) + key.key_id.encode()
    nonce = os.urandom(12)
    aad = b"%s|persons|%s|%s" % (header, column.encode(), row_key.encode())
    return (
        header + nonce + aead_for(key.algorithm, key.material).encrypt(nonce, value.encode(), aad)
    )


class _BeforeCipher:
    """``FieldCipher.decrypt`` as it was before source binding (main at f98a709), kept here
    only as the benchmark's baseline: the same checks and caching, v1 AAD, no owner check."""

    def __init__(self, keyring: KeyRing) -> None:
        self._keyring, self._aeads, self._generation = keyring, {}, keyring.generation

    def _aead(self, key_id: str):
        self._keyring.refresh()
        if self._generation != self._keyring.generation:
            self._aeads.clear()
            self._generation = self._keyring.generation
        aead = self._aeads.get(key_id)
        if aead is None:
            key = self._keyring.key(key_id)
            aead = self._aeads[key_id] = aead_for(key.algorithm, key.material)
        return aead

    def decrypt(self, blob: bytes, *, table: str, column: str, row_key: str) -> str:
        where = f"{table}.{column}[{row_key}]"
        if len(blob) < 2 or blob[0] != 1 or len(blob) < 2 + blob[1] + 12 + 16:
            raise ValueError(f"{where}: not a medfed v1 ciphertext")
        end = 2 + blob[1]
        header, nonce, sealed = blob[:end], blob[end : end + 12], blob[end + 12 :]
        try:
            key_id = header[2:].decode("ascii")
            aad = b"%s|%s|%s|%s" % (header, table.encode(), column.encode(), row_key.encode())
            return self._aead(key_id).decrypt(nonce, sealed, aad).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError) as exc:
            raise ValueError(f"{where}: {type(exc).__name__}") from None


def field_costs(profile: str, root: Path, rounds: int = 7) -> dict[str, list[float]]:
    """Microseconds per 1,000 fields, each measure once per round, rounds alternating."""
    ring = KeyRing.open(root / profile, create=True, profile=profile)
    ring.ensure_source("b")
    cipher, indexer = FieldCipher(ring), BlindIndexer(ring)
    key = ring.current_key("b")
    cells = [
        (f"P{i:06d}", f"{name}_enc", _values(i)[name]) for i in range(200) for name in FIELDS
    ]  # 1,000 fields
    blobs = [
        cipher.encrypt(v, source="b", table="persons", column=c, row_key=r) for r, c, v in cells
    ]
    v1_blobs = [_v1_blob(key, v, c, r) for r, c, v in cells]

    def decrypt_all() -> None:
        for (r, c, _), blob in zip(cells, blobs, strict=True):
            cipher.decrypt(blob, source="b", table="persons", column=c, row_key=r)

    def decrypt_v1() -> None:
        for (r, c, _), blob in zip(cells, v1_blobs, strict=True):
            cipher.decrypt(blob, source="b", table="persons", column=c, row_key=r)

    before = _BeforeCipher(ring)

    def decrypt_before() -> None:
        for (r, c, _), blob in zip(cells, v1_blobs, strict=True):
            before.decrypt(blob, table="persons", column=c, row_key=r)

    def encrypt_all() -> None:
        for r, c, v in cells:
            cipher.encrypt(v, source="b", table="persons", column=c, row_key=r)

    def index_all() -> None:
        for _, _, v in cells:
            indexer.id_number(v)

    measures = {
        "decrypt before": decrypt_before,
        "decrypt v1": decrypt_v1,
        "decrypt v2": decrypt_all,
        "encrypt": encrypt_all,
        "index": index_all,
    }
    found: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(rounds):
        for name, fn in measures.items():
            found[name].append(_best(fn, 3) * 1e6)
    return found


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
    rounds = 3 if getattr(args, "quick", False) else 7
    with tempfile.TemporaryDirectory(prefix="medfed-bench-crypto-") as tmp:
        root = Path(tmp)
        print(
            f"field crypto per 1,000 fields (best of 3 per round, {rounds} alternating rounds; "
            f"ratios: median and range over the rounds)"
        )
        print(
            f"{'profile':10} {'decrypt before':>15} {'decrypt v1':>11} {'decrypt v2':>11} "
            f"{'v2 ÷ before':>20} {'encrypt':>9} {'index':>9} {'re-encrypt':>14}"
        )
        for profile in ("standard", "national"):
            costs = field_costs(profile, root, rounds)
            ratios = sorted(
                v2 / before
                for v2, before in zip(costs["decrypt v2"], costs["decrypt before"], strict=True)
            )
            rate, done = asyncio.run(reencrypt_throughput(profile, root, values))
            ms = {name: min(samples) / 1000 for name, samples in costs.items()}
            print(
                f"{profile:10} {ms['decrypt before']:12.2f} ms {ms['decrypt v1']:8.2f} ms "
                f"{ms['decrypt v2']:8.2f} ms {ratios[len(ratios) // 2]:8.2f} "
                f"({ratios[0]:.2f}-{ratios[-1]:.2f}) {ms['encrypt']:6.2f} ms "
                f"{ms['index']:6.2f} ms {rate:9,.0f} val/s  ({done:,} values, SQLite)"
            )
        sign_ms, verify_ms = sm2_costs()
        print(
            f"SM2 checkpoint signature: sign {sign_ms:.1f} ms, verify {verify_ms:.1f} ms "
            f"(pure Python, gmalg)"
        )
