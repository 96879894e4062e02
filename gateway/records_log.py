"""The gateway's records log: opened with its ``[records]`` settings, its checkpoints written
outside the database (the file of signed notes, the witnesses) as the audit log's are, and
signed every ``checkpoint_seconds`` while it grows, so a witness's cosignature and the file
keep up with the anchors without a signature on every mutation."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from gateway.config import Settings
from gateway.startup import crypto_profile
from security.audit.outside import Publisher
from security.records import RecordsLog, load_records_signer
from security.records.settings import RecordsSettings

log = logging.getLogger("medfed.records")


def records_settings(settings: Settings) -> RecordsSettings:
    return settings.config.records


def checkpoint_directory(settings: Settings, chosen: RecordsSettings) -> Path:
    directory = Path(chosen.checkpoint_dir)
    return directory if directory.is_absolute() else settings.data_dir / directory


def open_records_log(settings: Settings, engine, *, publish: bool = True) -> RecordsLog:
    """The records log in the gateway database, its checkpoints signed by its own key and,
    with ``publish``, each one written to the file of notes and sent to the witnesses."""
    chosen = records_settings(settings)
    profile = crypto_profile(settings)
    signer = load_records_signer(settings.data_dir / "keys", chosen.origin, profile)
    records = RecordsLog(engine, signer, chosen.origin, profile)
    if publish:
        publisher = Publisher(checkpoint_directory(settings, chosen), chosen.witness_configs())
        publisher.proof = records.consistency_path
        records.on_checkpoint = publisher.published
        records.publisher = publisher
    return records


async def checkpoint_forever(records: RecordsLog, every: float) -> None:
    """Sign a checkpoint whenever the log grew, every ``every`` seconds (until cancelled);
    on the way out, the last one, and what is pending goes to the file and the witnesses."""
    try:
        while True:
            await asyncio.sleep(every)
            try:
                await records.checkpoint()
            except Exception:  # the database busy or away: the next round tries again
                log.exception("records log: no checkpoint this round")
    finally:
        publisher = getattr(records, "publisher", None)
        if publisher is not None:
            try:
                await records.checkpoint()
            except Exception:
                log.exception("records log: no checkpoint at shutdown")
            await publisher.drain()
