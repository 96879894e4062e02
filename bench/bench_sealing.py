"""The full-stack cloud-record query sealed (``X-Seal-To``) ÷ unsealed, for X25519 and the
hybrid ML-KEM-768+X25519: what sealing the answer (format 2: one HPKE context per answer and
the gateway's Ed25519 signature) costs.

One served gateway, the cached demo; per round the modes alternate (plain, X25519, hybrid) so
drift of the machine affects all alike. Sealed answers are checked to verify against the
gateway's published key and open to the plain one.

Then, in process, the sealing work alone on the same answer's sealed values, old against new
in alternating rounds: format 1 (one HPKE encryption per value) and format 2 (one
encapsulation, one AES-GCM per value, the canonical digest and the signature).
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
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
    base: str, people: list[tuple[str, str]], keys: dict[str, tuple[str, Path]], data: Path
) -> dict[str, dict]:
    """Every KEM's sealed answer verifies and opens to the plain one; returns them."""
    from security.crypto.unseal import GatewayKey, load_private_key, unseal_response

    gateway = GatewayKey.load(data / "keys" / "sealing.pub")
    person, token = people[0]
    body = {"query": CLOUD_RECORD, "variables": {"id": person}}
    answers = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        auth = {"Authorization": f"Bearer {token}"}
        plain = (await client.post("/graphql", json=body, headers=auth)).json()
        for kem, (kid, path) in keys.items():
            sealed = await client.post("/graphql", json=body, headers={**auth, "X-Seal-To": kid})
            opened = unseal_response(sealed.content, load_private_key(path), gateway_key=gateway)
            if opened != plain:
                raise RuntimeError(f"{kem}: the sealed answer does not open to the plain one")
            answers[kem] = {"plain": plain, "sealed": sealed.json()}
    return answers


def _in_process(answers: dict[str, dict], data: Path, rounds: int) -> list[list[str]]:
    """Format 1 against format 2 on the same values, alternating, best of each round."""
    from security.crypto import hpke_seal, sealed_answer
    from security.crypto.partners import load, partners_file
    from security.crypto.sealing_key import load_sealing_signer

    registry = load(partners_file(data, None))
    signer = load_sealing_signer(data / "keys")
    rows = []
    for kem, pair in answers.items():
        sealing = pair["sealed"]["extensions"]["sealing"]
        key = registry[sealing["kid"]]
        values = [(p, _at(pair["plain"]["data"], p)) for p in sealing["paths"]]

        def v1(key=key, values=values, kem=kem) -> None:
            for path, value in values:
                hpke_seal.seal(kem, key.public_key, key.kid, "r" * 32, path, value)

        def v2(key=key, values=values, pair=pair, kem=kem) -> None:
            sealer = sealed_answer.Sealer(kem, key.public_key, key.kid, "r" * 32, None)
            for path, value in values:
                sealer.seal(path, value)
            answer = {"data": pair["sealed"]["data"], "extensions": {}}
            answer["extensions"]["sealing"] = sealer.extension(signer.name)
            sealed_answer.sign(answer, signer.session().sign)

        timings: dict[str, list[float]] = {"v1": [], "v2": []}
        for _ in range(rounds):
            for name, fn in (("v1", v1), ("v2", v2)):
                timings[name].append(_seconds(fn))
        best1, best2 = min(timings["v1"]), min(timings["v2"])
        spread = [a / b for a, b in zip(timings["v1"], timings["v2"], strict=True)]
        rows.append(
            [
                kem,
                str(len(values)),
                f"{best1 * 1000:.2f}",
                f"{best2 * 1000:.2f}",
                f"{best1 / best2:.1f} ({min(spread):.1f}-{max(spread):.1f})",
            ]
        )
    return rows


async def _cpu_in_process(
    data: Path, people: list[tuple[str, str]], kids: dict[str, str | None], rounds: int
) -> dict[str, list[float]]:
    """CPU time per request (``time.process_time``) of the real app behind an in-process ASGI
    transport, the modes alternating request by request: CPU time is what sealing adds, and
    unlike wall time it hardly moves when other work shares the machine."""
    import time

    from bench.bench_suite import _InProcess

    stack = _InProcess(data, audit=False)
    samples: dict[str, list[float]] = {mode: [] for mode in kids}
    transport = httpx.ASGITransport(app=stack.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as c:
            for i in range(rounds + 3):
                person, token = people[i % len(people)]
                body = {"query": CLOUD_RECORD, "variables": {"id": person}}
                for mode, kid in kids.items():
                    headers = {"Authorization": f"Bearer {token}"}
                    if kid:
                        headers["X-Seal-To"] = kid
                    started = time.process_time()
                    response = await c.post("/graphql", json=body, headers=headers)
                    spent = time.process_time() - started
                    if response.status_code != 200:
                        raise RuntimeError(f"{mode}: {response.text[:200]}")
                    if i >= 3:  # warm-up
                        samples[mode].append(spent)
    finally:
        await stack.close()
    return samples


def _at(data, path):
    for part in path:
        data = data[part]
    return data


def _seconds(fn, repeat: int = 5) -> float:
    import time

    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


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
        answers = asyncio.run(_check(base, people, keys, data))
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
        f"patient tokens, {rounds} alternating rounds of {seconds:.0f} s per mode; sealed = "
        "format 2 (one HPKE context per answer, AES-256-GCM per value, Ed25519 signature)"
    )
    table(["mode", "p50 ms", "p99 ms", "÷ unsealed p50", "÷ unsealed p99"], rows)
    cpu_rounds = 20 if args.quick else 80
    cpu = asyncio.run(_cpu_in_process(data, people, modes, cpu_rounds))
    base = statistics.median(cpu["unsealed"])
    print()
    print(
        f"CPU time per cloud-record request, in process (ASGI, audit off), modes alternating "
        f"request by request, {cpu_rounds} each; ratio of medians, and of the lower and upper "
        f"quartiles"
    )
    cpu_rows = []
    for mode, values in cpu.items():
        q = statistics.quantiles(values, n=4)
        bq = statistics.quantiles(cpu["unsealed"], n=4)
        cpu_rows.append(
            [
                mode,
                f"{statistics.median(values) * 1000:.2f}",
                f"{statistics.median(values) / base:.2f} ({q[0] / bq[0]:.2f}-{q[2] / bq[2]:.2f})",
            ]
        )
    table(["mode", "CPU ms (median)", "÷ unsealed"], cpu_rows)
    print()
    print("sealing work alone on that answer's sealed values, in process (best of 5, rounds)")
    table(
        ["KEM", "values", "format 1 ms", "format 2 ms", "format 1 ÷ 2 (spread)"],
        _in_process(answers, data, 3 if args.quick else 7),
    )
