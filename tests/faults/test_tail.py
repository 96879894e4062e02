"""A tail that cannot be cut quietly: a gateway's log is witnessed by another medfed gateway
(a real process that cosigns each checkpoint, C2SP tlog-witness) and copied to the file of
signed notes. Someone with the database deletes the last events together with their
checkpoint rows and rewrites the head to match: ``medfed audit verify`` names the cut, from
the file, and from the witness alone once the file is gone too."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from connectors.sql.engine import create_source_engine
from gateway.audit_http import make_recorder
from gateway.config import load_settings
from security.audit.events import authentication_event
from security.audit.log import CHECKPOINTS, EVENTS, HEAD, NODES, tree_root
from security.audit.models import HEAD_ID
from security.audit.signer import load_or_create_ed25519, verifier_key_string
from tests.support import REPO
from tests.support.faults import FULL, LONG_REASON, Table
from tests.support.federation import Federation
from tests.support.processes import medfed

ORIGIN = "a.test/audit"
WITNESS = "b.test/witness"
EVENTS_LOGGED = 35
CUT_AT = 25

pytestmark = pytest.mark.skipif(not FULL, reason=LONG_REASON)


def _verify(config: Path, data_dir: Path) -> tuple[int, str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "audit",
            "verify",
        ],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout + done.stderr


async def _log_events(settings, count: int) -> dict[str, int]:
    engine = create_source_engine(settings.gateway_spec)
    recorder = make_recorder(settings, engine)
    try:
        for n in range(count):
            await recorder.record(
                authentication_event(
                    client="127.0.0.1",
                    path="/graphql",
                    method="POST",
                    status=401,
                    code="UNAUTHENTICATED",
                    reason=f"test {n}",
                    request_id=f"tail-{n:04d}",
                )
            )
        give_up = time.monotonic() + 30
        while recorder.publisher.cosigned.get("b", 0) < count - count % 10:
            assert time.monotonic() < give_up, recorder.publisher.cosigned
            await asyncio.sleep(0.1)
    finally:
        await recorder.close()  # signs the rest and tells the witness before it stops
    await engine.dispose()
    return dict(recorder.publisher.cosigned)


async def _cut(settings, keep: int) -> None:
    """What an intruder with the database does: drop the tail and everything that signed
    it, and make the head describe the shorter tree."""
    engine = create_source_engine(settings.gateway_spec)
    try:
        root = await tree_root(engine, keep)
        async with engine.begin() as conn:
            await conn.execute(delete(EVENTS).where(EVENTS.c.idx >= keep))
            await conn.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.size > keep))
            await conn.execute(delete(NODES).where(((NODES.c.idx + 1) * (2**NODES.c.level)) > keep))
            await conn.execute(
                update(HEAD).where(HEAD.c.id == HEAD_ID).values(size=keep, root=root)
            )
    finally:
        await engine.dispose()


def test_a_cut_tail_is_caught_by_the_file_and_by_a_witness_process(tmp_path, fault_table: Table):
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    for folder in (dir_a, dir_b):
        folder.mkdir()
        asyncio.run(Federation(folder).setup(institutions=False))
    log_key = verifier_key_string(load_or_create_ed25519(dir_a / "keys", ORIGIN))
    config_b = dir_b / "witness.toml"
    config_b.write_text(
        (REPO / "medfed.toml").read_text()
        + f'\n[witness]\nname = "{WITNESS}"\n[[witness.logs]]\norigin = "{ORIGIN}"\n'
        f'key = "{log_key}"\n'
    )
    witness = medfed(dir_b, config=config_b).start(timeout=90)
    try:
        witness_key = (dir_b / "keys" / "witness.pub").read_text().strip()
        config_a = dir_a / "logged.toml"
        config_a.write_text(
            (REPO / "medfed.toml").read_text()
            + f'\n[audit]\norigin = "{ORIGIN}"\ncheckpoint_every = 10\n'
            f'[[audit.witnesses]]\nname = "b"\nurl = "{witness.url}/witness"\n'
            f'key = "{witness_key}"\n'
        )
        settings = load_settings(config_a, data_dir=dir_a, env={})
        cosigned = asyncio.run(_log_events(settings, EVENTS_LOGGED))
        assert cosigned["b"] == EVENTS_LOGGED  # the final checkpoint reached the witness

        status, out = _verify(config_a, dir_a)  # positive control: intact, from outside
        assert status == 0, out
        assert f"size {EVENTS_LOGGED} from" in out

        asyncio.run(_cut(settings, CUT_AT))
        by_file = fault_table.row("tail cut: file of signed notes")
        by_witness = fault_table.row("tail cut: witness process only")
        status, out = _verify(config_a, dir_a)
        by_file.runs, by_file.acknowledged = 1, EVENTS_LOGGED
        by_file.lost = 0 if status == 1 and "truncated" in out else EVENTS_LOGGED - CUT_AT
        assert status == 1 and "truncated" in out, out
        assert "checkpoints.jsonl" in out or "witness b" in out

        (dir_a / "audit" / "checkpoints.jsonl").unlink()  # the intruder has the disk too
        status, out = _verify(config_a, dir_a)
        by_witness.runs, by_witness.acknowledged = 1, EVENTS_LOGGED
        by_witness.lost = 0 if status == 1 and "witness b" in out else EVENTS_LOGGED - CUT_AT
        assert status == 1 and "truncated" in out and "witness b" in out, out
    finally:
        witness.stop()
