"""Peers cosign the records log's checkpoints: another medfed gateway (a real process, its
``[witness]`` watching this log's origin) cosigns each one (C2SP tlog-cosignature) after
checking its consistency proof, and ``medfed records verify`` checks the log against the
newest checkpoint found anywhere. An intruder who cuts the log's tail together with its
checkpoint rows, and then the file of signed notes as well, is still caught by the witness."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import delete, select, update

from connectors.sql.engine import create_source_engine
from gateway.config import load_settings
from gateway.records_log import open_records_log
from security.audit import merkle
from security.audit.cosign import WitnessKey
from security.records import Anchor
from security.records.digest import digest
from security.records.log import CHECKPOINTS, HEAD, LEAVES, NODES, new_salt
from tests.support import REPO
from tests.support.federation import Federation
from tests.support.processes import medfed

ORIGIN = "a.test/records"
WITNESS = "b.test/witness"
ANCHORED = 12
CUT_AT = 8


def _anchor(n: int) -> Anchor:
    salt = new_salt()
    record = {"result_id": f"RW{n:04d}", "value": n}
    return Anchor(
        "test_results", "hospital-h1", f"RW{n:04d}", digest("test_results", record, salt), salt
    )


def _verify(config: Path, data_dir: Path) -> tuple[int, dict, str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "records",
            "verify",
            "--log-only",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, json.loads(done.stdout), done.stderr


async def _anchor_and_wait(settings) -> dict[str, int]:
    engine = create_source_engine(settings.gateway_spec)
    log = open_records_log(settings, engine)
    for start in range(0, ANCHORED, 4):  # three checkpoints, each extending the last
        await log.append([_anchor(n) for n in range(start, start + 4)])
        await log.checkpoint()
        give_up = time.monotonic() + 60
        while log.publisher.cosigned.get("b", 0) < start + 4:
            assert time.monotonic() < give_up, log.publisher.cosigned
            await asyncio.sleep(0.1)
    await log.publisher.drain()
    await engine.dispose()
    return dict(log.publisher.cosigned)


async def _cut(settings, keep: int) -> None:
    engine = create_source_engine(settings.gateway_spec)
    async with engine.begin() as conn:
        leaves = (
            await conn.execute(
                select(LEAVES.c.leaf_hash).where(LEAVES.c.idx < keep).order_by(LEAVES.c.idx)
            )
        ).scalars()
        frontier = merkle.Frontier()
        for leaf in leaves:
            frontier.append(leaf)
        await conn.execute(delete(LEAVES).where(LEAVES.c.idx >= keep))
        await conn.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.size > keep))
        await conn.execute(delete(NODES).where(((NODES.c.idx + 1) * (2**NODES.c.level)) > keep))
        await conn.execute(update(HEAD).values(size=keep, frontier=b"".join(frontier.hashes())))
    await engine.dispose()


def test_a_peer_cosigns_the_records_checkpoints_and_catches_a_cut_tail(tmp_path):
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    for folder in (dir_a, dir_b):
        folder.mkdir()
        asyncio.run(Federation(folder).setup(institutions=False))
    config_a = dir_a / "records.toml"
    config_a.write_text((REPO / "medfed.toml").read_text() + f'\n[records]\norigin = "{ORIGIN}"\n')
    settings = load_settings(config_a, data_dir=dir_a, env={})
    open_records_log(settings, None, publish=False)  # makes the log's key
    log_key = (dir_a / "keys" / "records-log.vkey").read_text().strip()
    config_b = dir_b / "witness.toml"
    config_b.write_text(
        (REPO / "medfed.toml").read_text()
        + f'\n[witness]\nname = "{WITNESS}"\n[[witness.logs]]\norigin = "{ORIGIN}"\n'
        f'key = "{log_key}"\n'
    )
    witness = medfed(dir_b, config=config_b).start(timeout=120)
    try:
        witness_key = (dir_b / "keys" / "witness.pub").read_text().strip()
        config_a.write_text(
            config_a.read_text()
            + f'\n[[records.witnesses]]\nname = "b"\nurl = "{witness.url}/witness"\n'
            f'key = "{witness_key}"\n'
        )
        settings = load_settings(config_a, data_dir=dir_a, env={})
        cosigned = asyncio.run(_anchor_and_wait(settings))
        assert cosigned == {"b": ANCHORED}

        # The witness holds the newest checkpoint with its own valid cosignature.
        import httpx

        held = httpx.get(f"{witness.url}/witness/checkpoint", params={"origin": ORIGIN}).text
        assert held.splitlines()[1] == str(ANCHORED)
        WitnessKey.parse(witness_key).cosigned_at(held)

        status, report, err = _verify(config_a, dir_a)  # positive control: intact
        assert status == 0 and report["logValid"] and report["newestOutside"] == ANCHORED, err

        asyncio.run(_cut(settings, CUT_AT))
        status, report, err = _verify(config_a, dir_a)
        assert status == 1 and not report["logValid"], (report, err)
        assert any("truncated" in p for p in report["problems"]), report

        (dir_a / "records" / "checkpoints.jsonl").unlink()  # the intruder has the disk too
        status, report, err = _verify(config_a, dir_a)
        assert status == 1 and any("truncated" in p for p in report["problems"]), report
        assert any("witness b" in line for line in report["outside"]), report
    finally:
        witness.stop()
