"""The gateway's own database (audit log, consents, idempotency keys): one declarative base.

Modules that keep tables there subclass :class:`GatewayBase`; :func:`gateway_metadata`
imports them all so migrations and ``create_all`` see every table.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import DeclarativeBase

# Modules defining GatewayBase tables; each adds itself here when it is written.
GATEWAY_MODEL_MODULES: tuple[str, ...] = (
    "security.audit.models",
    "security.consent.models",
    "security.idempotency",
    "security.policy.break_glass",
    "security.documents",
    "security.privacy.ledger",
    "security.privacy.extract_jobs",
    "security.warnings",
    "security.records.models",
)


class GatewayBase(DeclarativeBase):
    pass


def gateway_metadata() -> MetaData:
    for module in GATEWAY_MODEL_MODULES:
        importlib.import_module(module)
    return GatewayBase.metadata


async def insert_if_absent(conn: AsyncConnection, table: Table, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless a row with its primary key exists; True if this call inserted it.

    Writers derive primary keys from idempotency keys, so a retried or racing request lands
    on the same key and converges on one row instead of failing or duplicating.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    result = await conn.execute(insert(table).values(row).on_conflict_do_nothing())
    return result.rowcount == 1
