"""The full-stack cloud-record query sealed (``X-Seal-To``) ÷ unsealed, for X25519 and the
hybrid ML-KEM-768+X25519: what HPKE-sealing every level-4+ value of the answer costs.

One served gateway, the cached demo; per round the modes alternate (plain, X25519, hybrid) so
drift of the machine affects all alike. Sealed answers are checked to open to the plain one.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx

from bench.bench_api import CLOUD_RECORD, _drive
from bench.common import demo_dir, demo_persons, patient_tokens, percentiles, served, table

ORG = "330000"  # the org of bench.common.patient_tokens
KEMS = {"X25519": "bench-x25519", "MLKEM768-X25519": "bench-mlkem768x25519"}


def _partner_keys(data: Path) -> dict[str, tuple[str, Path]]:
    """(kid, private key file) per KEM, registered once in the demo's partner registry and
    reused by later runs."""
    from security.crypto import hpke_seal
    from security.crypto.key_files import create_private_once
    from security.crypto.partners import load, partners_file, register
    from security.crypto.unseal import private_key_text

    registry = partners_file(data, None)
    known = load(registry)
    folder = data / "bench-partner"
    keys = {}
    for kem, prefix in KEMS.items():
        reusable = [p for p in sorted(folder.glob(f"{prefix}-*.key")) if p.stem in known]
        if reusable:
            keys[kem] = (reusable[0].stem, reusable[0])
            continue
        kid = f"{prefix}-{secrets.token_hex(3)}"
        pair = hpke_seal.generate(kem)
        register(registry, ORG, kid, kem, pair.public_raw)
        path = folder / f"{kid}.key"
        text = private_key_text(kid, kem, ORG, pair.private_raw)
        create_private_once(path, lambda text=text: text)
        keys[kem] = (kid, path)
    return keys


async def _sealed(
    base: str, people: list[tuple[str, str]], seconds: float, kid: str | None
) -> list[float]:
    """One client, sealed to ``kid`` (or not sealed)."""
    samples, _ = await _drive(base, people, seconds, 1, headers={"X-Seal-To": kid} if kid else None)
    return samples


async def _check(
    base: str, people: list[tuple[str, str]], keys: dict[str, tuple[str, Path]]
) -> None:
    from security.crypto.unseal import load_private_key, unseal_response

    person, token = people[0]
    body = {"query": CLOUD_RECORD, "variables": {"id": person}}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        auth = {"Authorization": f"Bearer {token}"}
        plain = (await client.post("/graphql", json=body, headers=auth)).json()
        for kem, (kid, path) in keys.items():
            sealed = await client.post("/graphql", json=body, headers={**auth, "X-Seal-To": kid})
            if unseal_response(sealed.content, load_private_key(path)) != plain:
                raise RuntimeError(f"{kem}: the sealed answer does not open to the plain one")


def main(args) -> None:
    persons = 2_000 if args.quick else 10_000
    seconds = 2.0 if args.quick else 6.0
    rounds = 1 if args.quick else 2
    data = demo_dir(persons)
    people = patient_tokens(data, demo_persons(data, limit=20))
    keys = _partner_keys(data)
    modes: dict[str, str | None] = {"unsealed": None, **{k: kid for k, (kid, _) in keys.items()}}
    pooled: dict[str, list[float]] = {mode: [] for mode in modes}
    with served(data) as base:
        asyncio.run(_check(base, people, keys))
        for kid in modes.values():
            asyncio.run(_sealed(base, people, 1.0, kid))  # warm caches
        for _ in range(rounds):
            for mode, kid in modes.items():
                pooled[mode] += asyncio.run(_sealed(base, people, seconds, kid))
    base50, base99 = percentiles(pooled["unsealed"])
    rows = [["unsealed", f"{base50:.2f}", f"{base99:.2f}", "1.00", "1.00"]]
    for kem in KEMS:
        p50, p99 = percentiles(pooled[kem])
        rows.append(
            [
                f"sealed {kem}",
                f"{p50:.2f}",
                f"{p99:.2f}",
                f"{p50 / base50:.2f}",
                f"{p99 / base99:.2f}",
            ]
        )
    print(
        f"cloud-record query, demo of {persons:,} persons, 1 uvicorn worker, 1 client, "
        "patient tokens; sealed = every level-4+ value HPKE-sealed (AES-256-GCM)"
    )
    table(["mode", "p50 ms", "p99 ms", "÷ unsealed p50", "÷ unsealed p99"], rows)
