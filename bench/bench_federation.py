"""The cost of federation hops on the cloud-record query (demo-10000): Hive Gateway in front
of the three subgraphs ÷ direct to medfed, and a peer connector ÷ the same sources local."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import bench_config, demo_dir, demo_persons, patient_tokens, percentiles, table
from schema.federation.compose import compose
from tests.support.processes import hive_gateway, medfed, router_missing

QUERY = (
    "query($p: ID!) { person(personId: $p) { name cloudRecord { enrollments { nodes { "
    "status } } visits(first: 20) { nodes { visitId beginDate } } settlements(first: 20) "
    "{ nodes { settlementId total } } filings { nodes { filingId } } testResults { nodes "
    "{ resultId itemName } } } } }"
)


def _timed(url: str, people: list[tuple[str, str]], rounds: int) -> list[float]:
    samples = []
    with httpx.Client(timeout=30) as client:
        for i in range(rounds):
            ref, token = people[i % len(people)]
            started = time.perf_counter()
            r = client.post(
                url + "/graphql",
                json={"query": QUERY, "variables": {"p": ref}},
                headers={"Authorization": f"Bearer {token}"},
            )
            samples.append(time.perf_counter() - started)  # percentiles() reports ms
            assert r.status_code == 200, r.text[:300]
    return samples


def _row(name: str, samples: list[float], base: list[float] | None) -> list:
    p50, p99 = percentiles(samples)
    ratio = "" if base is None else f"{p50 / percentiles(base)[0]:.2f}x"
    return [name, f"{p50:.1f}", f"{p99:.1f}", ratio]


def main(args=None) -> None:
    rounds = getattr(args, "rounds", None) or 200
    data = demo_dir(10000)
    people = patient_tokens(data, demo_persons(data))
    config = bench_config()
    rows: list[list] = []
    direct = medfed(data, config=config).start()
    try:
        _timed(direct.url, people, 10)  # warm caches and pools
        base = _timed(direct.url, people, rounds)
        rows.append(_row("direct to medfed (local sources)", base, None))
        reason = router_missing()
        if reason:
            print(f"router hop skipped: {reason}")
        else:
            subs = {
                n: medfed(data, "--subgraph", n, config=config).start()
                for n in ("records", "results", "settlement")
            }
            work = Path(tempfile.mkdtemp(prefix="bench-router-"))
            router = None
            try:
                sdl = work / "supergraph.graphql"
                sdl.write_text(compose({n: p.url + "/graphql" for n, p in subs.items()}))
                router = hive_gateway(sdl, work / "hive.log").start(timeout=50)
                _timed(router.url, people, 10)
                rows.append(_row("through Hive Gateway", _timed(router.url, people, rounds), base))
            finally:
                if router is not None:
                    router.stop()
                for p in subs.values():
                    p.stop()
                shutil.rmtree(work, ignore_errors=True)
        rows.append(_row(*_peer_hop(data, direct.url, people, rounds), base))
    finally:
        direct.stop()
    table(["cloud record", "p50 ms", "p99 ms", "÷ direct"], rows)


def _peer_hop(data: Path, peer_url: str, people: list[tuple[str, str]], rounds: int):
    """A gateway with no sources of its own and the demo gateway as its only peer. Its
    connection presents the benchmark person's own token (the peer's policy then answers)."""
    work = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    shutil.copytree(data / "keys", work / "keys")
    token_file = work / "peer.token"
    token_file.write_text(people[0][1])
    config = work / "medfed.toml"
    head = bench_config().read_text().split("[[sources]]")[0]
    config.write_text(
        head
        + "[limits]\nrate_limits = false\n"
        + f'''
[[sources]]
name = "peer-demo"
kind = "peer"
url = "{peer_url}/graphql"
token_file = "{token_file}"
purpose = "PATIENT_ACCESS"
'''
    )
    local = medfed(work, config=config)
    try:
        local.start()
        one = [people[0]]
        _timed(local.url, one, 10)
        return "through a peer connector", _timed(local.url, one, rounds)
    finally:
        local.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
