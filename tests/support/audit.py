"""Reading the audit log of a test federation straight from the gateway database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from connectors.sql.engine import create_source_engine


async def logged(fed) -> list[dict[str, Any]]:
    """Every event in the log, oldest first, from the stored leaves."""
    return [orjson.loads(entry)["event"] for entry in await raw_entries(fed)]


async def raw_entries(fed) -> list[bytes]:
    engine = create_source_engine(fed.settings.gateway_spec, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT entry FROM audit_events ORDER BY idx"))).all()
    finally:
        await engine.dispose()
    return [bytes(r[0]) for r in rows]


async def gateway_sql(fed, sql: str) -> None:
    engine = create_source_engine(fed.settings.gateway_spec, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def fields_of(event: dict, person: str, kind: str) -> set[str]:
    for entry in event["persons"]:
        if entry["personId"] == person:
            return {f["field"] for f in entry[kind]}
    return set()


async def verify(fed, services) -> Any:
    """Close the app's log (signing a final checkpoint), then verify the whole log."""
    from security.audit import verify_log
    from security.audit.signer import VERIFIER_KEY_FILE, parse_verifier_key

    if services is not None:
        await services.extras["audit"].close()
    key = parse_verifier_key((fed.data_dir / "keys" / VERIFIER_KEY_FILE).read_text())
    engine = create_source_engine(fed.settings.gateway_spec, poolclass=NullPool)
    try:
        return await verify_log(engine, key)
    finally:
        await engine.dispose()


def append_events(
    data_dir: Path,
    count: int,
    start: int = 0,
    profile: str = "standard",
    *,
    checkpoint_every: int = 10,
    checkpoint_on_close: bool = True,
) -> None:
    """Append events ``start``… through a log on the data directory's gateway database
    (checkpoint every 10), signed under the crypto ``profile``, then close it (without a
    final checkpoint if not ``checkpoint_on_close``: a gateway stopped between two)."""
    from connectors.sql import migrate
    from gateway.config import load_settings
    from security.audit import AuditLogConfig, open_audit_log

    async def go() -> None:
        spec = load_settings(data_dir=data_dir).gateway_spec
        await migrate.upgrade(spec)
        engine = create_source_engine(spec)
        log = open_audit_log(
            engine,
            data_dir / "keys",
            AuditLogConfig(
                checkpoint_every=checkpoint_every, checkpoint_on_close=checkpoint_on_close
            ),
            profile,
        )
        for n in range(start, start + count):
            await log.append({"n": n, "purpose": "TREATMENT"})
        await log.close()
        await engine.dispose()

    asyncio.run(go())


async def open_warnings(fed, found, services=None) -> list[str]:
    """Open rule hits through the audit log, as the claims scan does (the event carrying
    their facts stores them); through ``services``' log, or one of its own, closed after."""
    from gateway.app import build_services
    from security import warnings

    own = services is None
    services = services or build_services(fed.settings)
    recorder = services.extras["audit"]
    try:
        return await warnings.record(services.gateway_engine, recorder, found)
    finally:
        if own:
            await recorder.close()
