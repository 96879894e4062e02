"""The gateway's records log: ``[records]`` read strictly, and checkpoints signed on their
own while the log grows, each written to the file of signed notes (none while it does not)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from connectors.sql import migrate
from connectors.sql.engine import create_source_engine
from gateway.config import ConfigError, Settings
from gateway.records_log import checkpoint_forever, open_records_log, records_settings
from security.records import Anchor
from security.records.log import new_salt
from tests.support.audit_log import sqlite_spec


def _settings(data_dir, records) -> Settings:
    base = Settings(
        data_dir=data_dir,
        host="h",
        port=1,
        dev=False,
        sources=(),
        gateway_url="",
        config_path=None,
    )
    return base if records is None else base.with_tables(records=records)


@pytest.mark.parametrize(
    ("records", "key"),
    [
        ({"origin": "has space"}, "records.origin"),
        ({"origin": ""}, "records.origin"),
        ({"checkpoint_seconds": 0}, "records.checkpoint_seconds"),
        ({"checkpoint_seconds": "5"}, "records.checkpoint_seconds"),
        ({"checkpoint_dir": 3}, "records.checkpoint_dir"),
        ({"witnesses": {"name": "b"}}, "records.witnesses"),
        (
            {"witnesses": [{"name": "b", "url": "http://peer.example", "key": "x"}]},
            "records.witnesses[0].url",
        ),
        ({"witness": []}, "records.witness"),
    ],
)
def test_records_settings_are_read_strictly(tmp_path, records, key):
    with pytest.raises(ConfigError) as raised:
        records_settings(_settings(tmp_path, records))
    assert raised.value.key == key
    chosen = records_settings(_settings(tmp_path, {"origin": "records.a.example"}))
    assert chosen.origin == "records.a.example" and chosen.checkpoint_seconds == 5  # control
    assert records_settings(_settings(tmp_path, None)).origin == "medfed.local/records"


def _anchor(n: int) -> Anchor:
    return Anchor("test_results", "hospital-h1", f"R{n}", "00" * 32, new_salt())


def _sizes_in_file(data_dir) -> list[int]:
    path = data_dir / "records" / "checkpoints.jsonl"
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [orjson.loads(line)["size"] for line in lines]


async def _until_in_file(data_dir, size: int) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 20
    while size not in _sizes_in_file(data_dir):
        assert loop.time() < give_up, _sizes_in_file(data_dir)
        await asyncio.sleep(0.05)


async def test_checkpoints_are_signed_while_the_log_grows_and_written_outside(data_dir):
    spec = sqlite_spec(data_dir)
    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    settings = _settings(data_dir, {"origin": "a.test/records"})
    log = open_records_log(settings, engine)
    await log.append([_anchor(n) for n in range(3)])
    task = asyncio.create_task(checkpoint_forever(log, 0.1))
    try:
        await _until_in_file(data_dir, 3)
        await log.append([_anchor(n) for n in range(3, 5)])
        await _until_in_file(data_dir, 5)
        await asyncio.sleep(0.5)  # nothing appended since: no new checkpoint
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await engine.dispose()
    assert _sizes_in_file(data_dir) == [3, 5]
    lines = (data_dir / "records" / "checkpoints.jsonl").read_bytes().splitlines()
    assert all("a.test/records\n" in orjson.loads(line)["note"] for line in lines)
