"""Idempotency keys: a client-chosen key makes a write happen at most once.

A key belongs to one caller (issuer and subject of the token, stored only as a digest) and
remembers which operation it was used for, a SHA-256 of that request's canonical input and,
once the write is done, where the created object lives. The same key with the same input
gives back the same object; with another input it is refused.

Writes converge under retries and races because the created row's primary key is derived
from (operation, caller, key) and inserted if absent: a key is *reserved* before the write
and *completed* after it, and a request that finds its key reserved but not completed simply
redoes the write, which lands on the same row.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from security.store import GatewayBase, insert_if_absent

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KEY_RULE = "must be 1-64 characters from A-Z, a-z, 0-9, '_' and '-'"


class IdempotencyKeyRow(GatewayBase):
    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    operation: Mapped[str] = mapped_column(String(40))
    request_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(64), nullable=True)
    object_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


TABLE = IdempotencyKeyRow.__table__


def key_problem(key: str) -> str | None:
    return None if KEY_RE.match(key) else KEY_RULE


def caller_digest(issuer: str, subject: str) -> str:
    """Who owns a key, without storing the token's subject (it may name a person)."""
    return hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()


def request_hash(operation: str, canonical_input: Any) -> str:
    """SHA-256 of the operation and its input as canonical JSON (sorted keys, no spaces).
    ``canonical_input`` must already be plain JSON: strings, numbers, lists, dicts."""
    text = json.dumps(
        {"operation": operation, "input": canonical_input},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def derive_id(prefix: str, length: int, operation: str, caller: str, key: str) -> str:
    """The primary key a write under (operation, caller, key) creates: always the same."""
    digest = hashlib.sha256(f"{operation}\0{caller}\0{key}".encode()).hexdigest()
    return prefix + digest[: length - len(prefix)].upper()


@dataclass(frozen=True)
class KeyUse:
    """What a key was used for, and (once done) the object it created."""

    operation: str
    request_hash: str
    source: str | None
    object_id: str | None
    completed: bool

    def same_request(self, operation: str, hashed: str) -> bool:
        return self.operation == operation and self.request_hash == hashed


class IdempotencyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find(self, caller: str, key: str) -> KeyUse | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(TABLE).where(TABLE.c.caller == caller, TABLE.c.key == key)
                )
            ).first()
        if row is None:
            return None
        return KeyUse(
            operation=row.operation,
            request_hash=row.request_hash,
            source=row.source,
            object_id=row.object_id,
            completed=row.completed_at is not None,
        )

    async def reserve(self, caller: str, key: str, operation: str, hashed: str) -> KeyUse:
        """Claim ``key`` for this request unless it is claimed; return the claim that holds
        (this one, or the one a concurrent request made first)."""
        async with self._engine.begin() as conn:
            await insert_if_absent(
                conn,
                TABLE,
                {
                    "caller": caller,
                    "key": key,
                    "operation": operation,
                    "request_hash": hashed,
                    "source": None,
                    "object_id": None,
                    "created_at": datetime.now(UTC),
                    "completed_at": None,
                },
            )
        use = await self.find(caller, key)
        assert use is not None
        return use

    async def complete(self, caller: str, key: str, source: str, object_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(TABLE)
                .where(TABLE.c.caller == caller, TABLE.c.key == key, TABLE.c.completed_at.is_(None))
                .values(source=source, object_id=object_id, completed_at=datetime.now(UTC))
            )
