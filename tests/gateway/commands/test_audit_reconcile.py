"""``medfed audit reconcile``: settles intents without an outcome from the shell, says what it
did, and exits 1 while a source cannot say (the intent stays open)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from gateway.app import build_services
from gateway.audit_http import RECORDER
from security.audit import writes as audit_writes
from tests.support import REPO
from tests.support.federation import Federation, make_id_number

HOSPITAL = "hospital-h33010600001"


def _orphans(data_dir) -> list[int]:
    async def run() -> list[int]:
        fed = await Federation(data_dir).setup()
        ref = await fed.add_person(make_id_number(seq=23), "周九")
        present = await fed.add_result(ref)
        services = build_services(fed.settings)
        recorder = services.extras[RECORDER]
        found = []
        for object_id in (present, "R" + "Y" * 23):
            write = audit_writes.Write(
                "publishTestResult", HOSPITAL, "test_results", "result_id", object_id
            )
            event = audit_writes.intent_event(
                request_id="orphan",
                principal=None,
                purpose=None,
                person=ref,
                write=write,
                holder=services.registry.holder(HOSPITAL),
            )
            event["process"] = {**event["process"], "pid": 2**22 + 999}  # gone
            found.append(await recorder.record(event))
        await recorder.close()
        await services.registry.dispose()
        await services.gateway_engine.dispose()
        return found

    return asyncio.run(run())


def _reconcile(data_dir) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(REPO / "medfed.toml"),
            "--data-dir",
            str(data_dir),
            "audit",
            "reconcile",
        ],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_reconcile_settles_and_reports(data_dir):
    present, absent = _orphans(data_dir)
    done = _reconcile(data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"intent {present}: publishTestResult at {HOSPITAL}" in done.stdout
    assert f"intent {present}:" in done.stdout and "APPLIED" in done.stdout
    assert f"intent {absent}:" in done.stdout and "NOT_APPLIED" in done.stdout
    assert "2 settled, 0 left open" in done.stdout
    again = _reconcile(data_dir)  # nothing left to do
    assert again.returncode == 0 and "0 settled, 0 left open" in again.stdout


def test_reconcile_exits_1_while_a_source_cannot_say(data_dir):
    _orphans(data_dir)
    path = data_dir / "sources" / f"{HOSPITAL}.db"
    os.rename(path, path.with_suffix(".gone"))
    done = _reconcile(data_dir)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "OPEN (FILE_MISSING)" in done.stdout and "0 settled, 2 left open" in done.stdout
