"""A witness of other gateways' audit logs (C2SP tlog-witness ``add-checkpoint``).

For each log it is configured to watch (origin and the log's verifier key) it keeps the
latest checkpoint it cosigned, and cosigns a new one only if the log signed it and a
consistency proof shows it extends that one: a log that cut its tail, or forked, cannot
get a cosignature again, and the checkpoint the witness holds names the size it reached.
Checking the old size and storing the new checkpoint are one compare-and-swap, so two
submissions racing cannot roll the witness back.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from security.audit import merkle
from security.audit.cosign import WitnessSigner
from security.audit.models import WitnessCheckpoint
from security.audit.note import NoteError, open_checkpoint
from security.audit.signer import AuditKeyError, Verifier, parse_verifier_key
from security.tables import NonEmpty, Table

STATE = WitnessCheckpoint.__table__
MAX_BODY = 64 * 1024  # a checkpoint, up to 63 proof lines and a few signatures
MAX_PROOF = 63
SIZE_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class WitnessedLog(Table):
    """One ``[[witness.logs]]``: a log this gateway cosigns, by origin line and verifier key."""

    origin: NonEmpty
    key: NonEmpty

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        try:
            parse_verifier_key(value)
        except AuditKeyError as exc:
            raise ValueError(str(exc)) from None
        return value


class WitnessTable(Table):
    """``[witness]``: this gateway's witness name and the logs it watches (both, or neither)."""

    name: Annotated[str, StringConstraints(pattern=r"^[^+\s]+$")] | None = None
    logs: list[WitnessedLog] = Field(default_factory=list)

    def mistake(self) -> tuple[str, str] | None:
        if self.name is not None and not self.logs:
            return "logs", "must list the logs to witness ([[witness.logs]])"
        if self.logs and self.name is None:
            return "name", "is required with logs (the key name this gateway cosigns with)"
        return None


@dataclass(frozen=True)
class WitnessSettings:
    """The ``[witness]`` table with its logs' keys parsed."""

    name: str | None = None
    logs: Mapping[str, Verifier] | None = None  # origin -> the log's verifier

    @property
    def enabled(self) -> bool:
        return bool(self.name and self.logs)

    @classmethod
    def from_table(cls, table: WitnessTable) -> WitnessSettings:
        if table.name is None:
            return cls()
        return cls(table.name, {log.origin: parse_verifier_key(log.key) for log in table.logs})


def _parse(body: bytes) -> tuple[int, list[bytes], str]:
    text = body.decode("utf-8")
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise ValueError("no empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0].split(" ")
    if len(first) != 2 or first[0] != "old" or not first[1].isdigit():
        raise ValueError("the first line must be 'old <size>'")
    if len(first[1]) > 1 and first[1].startswith("0"):
        raise ValueError("the old size has leading zeroes")
    if len(lines) - 1 > MAX_PROOF:
        raise ValueError(f"more than {MAX_PROOF} proof lines")
    proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
    if any(len(h) != merkle.HASH_SIZE for h in proof):
        raise ValueError("a proof line is not a SHA-256 hash")
    return int(first[1]), proof, note


async def _state(engine: AsyncEngine, origin: str):
    async with engine.connect() as conn:
        return (await conn.execute(select(STATE).where(STATE.c.origin == origin))).first()


async def add_checkpoint(
    engine: AsyncEngine, settings: WitnessSettings, signer: WitnessSigner, body: bytes
) -> Answer:
    if len(body) > MAX_BODY:
        return Answer(413, "request too large\n")
    try:
        old, proof, note = _parse(body)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        return Answer(400, f"{exc}\n")
    origin = note.split("\n", 1)[0]
    verifier = (settings.logs or {}).get(origin)
    if verifier is None:
        return Answer(404, "unknown log origin\n")
    try:
        checkpoint = open_checkpoint(note, [verifier], origin)
    except NoteError:
        return Answer(403, "the checkpoint is not signed by the log's key\n")
    if old > checkpoint.size:
        return Answer(400, "the old size is larger than the checkpoint's\n")
    state = await _state(engine, origin)
    held_size = state.size if state is not None else 0
    if old != held_size:
        return Answer(409, f"{held_size}\n", SIZE_TYPE)
    if state is not None and checkpoint.size == state.size:
        if checkpoint.root != state.root:
            return Answer(409, f"{held_size}\n", SIZE_TYPE)  # same size, other root: a fork
    elif old == 0:
        if proof:
            return Answer(422, "the proof from size 0 must be empty\n")
    elif not merkle.verify_consistency(old, state.root, checkpoint.size, checkpoint.root, proof):
        return Answer(422, "the consistency proof does not verify\n")
    cosignature = signer.cosign(checkpoint.body())
    values = {
        "size": checkpoint.size,
        "root": checkpoint.root,
        "note": note + cosignature,
        "updated_at": datetime.now(UTC),
    }
    stored = True
    try:
        async with engine.begin() as conn:
            if state is None:
                await conn.execute(insert(STATE).values(origin=origin, **values))
            else:
                moved = await conn.execute(
                    update(STATE)
                    .where(STATE.c.origin == origin, STATE.c.size == state.size)
                    .values(**values)
                )
                stored = moved.rowcount == 1
    except IntegrityError:  # another submission stored the first checkpoint meanwhile
        stored = False
    if not stored:
        now = await _state(engine, origin)
        return Answer(409, f"{now.size if now is not None else 0}\n", SIZE_TYPE)
    return Answer(200, cosignature)


async def latest(engine: AsyncEngine, origin: str) -> Answer:
    state = await _state(engine, origin)
    if state is None:
        return Answer(404, "nothing cosigned for this origin\n")
    return Answer(200, state.note)
