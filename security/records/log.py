"""The records log: append anchors, sign checkpoints, prove inclusion, verify the whole log.

A leaf is the canonical JSON of one anchor, ``{"digest", "id", "index", "kind", "salt",
"source"}``: the record's table (``kind``), the source holding it, its primary key, and its
digest (``security.records.digest``) under a random salt, so the log commits to the record
without letting anyone who reads a leaf test guesses of its content. The tree, proofs and
checkpoints are the audit log's (RFC 6962 hashing in ``security.audit.merkle``, C2SP signed
checkpoints in ``security.audit.note``) under their own origin and key.

Appends are serialised by the head row: the first statement of each append's transaction
writes it, which takes the database's write lock (PostgreSQL: the row lock; SQLite: the
file's), so the tree stays one gap-free sequence however many processes append. An anchor
already in the log (same kind, source and id) is not appended again: anchoring is idempotent
like the mutations that call it.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from security.audit import merkle
from security.audit.log import AuditLogError
from security.audit.log import range_hashes as audit_range_hashes
from security.audit.note import Checkpoint, sign_checkpoint
from security.audit.signer import Signer, Verifier, load_or_create_ed25519, publish_verifier_key
from security.audit.verify import LogTables, verify_log
from security.errors import MedfedError
from security.records.models import RecordCheckpoint, RecordHead, RecordLeaf, RecordNode

HEAD_ID = 1
LOCKED_ATTEMPTS = 4
LEAVES = RecordLeaf.__table__
NODES = RecordNode.__table__
HEAD = RecordHead.__table__
CHECKPOINTS = RecordCheckpoint.__table__
PRIVATE_KEY_FILE = "records-log.key"
SM2_KEY_FILE = "records-log.sm2"
VERIFIER_KEY_FILE = "records-log.vkey"


class RecordsLogError(MedfedError):
    """The log cannot append, prove or verify; the message names no record content."""


@dataclass(frozen=True)
class Anchor:
    kind: str
    source: str
    record_id: str
    digest: str  # hex
    salt: str  # hex, 16 random bytes: the digest's blinding


@dataclass(frozen=True)
class RecordProof:
    index: int
    entry: dict[str, Any]
    leaf_hash: bytes
    tree_size: int
    root: bytes
    proof: list[bytes]
    checkpoint: str


def new_salt() -> str:
    return secrets.token_hex(16)


def load_records_signer(keys_dir: Path, name: str, profile: str = "standard") -> Signer:
    """The records log's own checkpoint key (Ed25519, or SM2 in the national profile)."""
    if profile == "national":
        from security.crypto.sm2 import load_or_create_sm2

        signer: Signer = load_or_create_sm2(keys_dir, name, private_file=SM2_KEY_FILE)
        publish_verifier_key(keys_dir, signer, VERIFIER_KEY_FILE)
        return signer
    return load_or_create_ed25519(
        keys_dir, name, private_file=PRIVATE_KEY_FILE, verifier_file=VERIFIER_KEY_FILE
    )


def _entry(anchor: Anchor, index: int) -> bytes:
    body = {
        "digest": anchor.digest,
        "id": anchor.record_id,
        "index": index,
        "kind": anchor.kind,
        "salt": anchor.salt,
        "source": anchor.source,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _frontier_of(raw: bytes, size: int) -> merkle.Frontier:
    hashes = [raw[i : i + merkle.HASH_SIZE] for i in range(0, len(raw), merkle.HASH_SIZE)]
    return merkle.Frontier(size, hashes)


class RecordsLog:
    def __init__(
        self, engine: AsyncEngine, signer: Signer, origin: str, profile: str = "standard"
    ) -> None:
        self.engine = engine
        self.profile = profile  # the records' digest: SHA-256, or SM3 in the national profile
        self.signer = signer
        self.origin = origin
        self._lock = asyncio.Lock()  # one appender per process; the head row across them
        # Told of every checkpoint this process signs and stores (the file of notes and the
        # witnesses: security.audit.outside.Publisher.published), after its commit.
        self.on_checkpoint: Callable[[int, str], None] | None = None
        self.publisher: Any = None  # what on_checkpoint belongs to, drained at shutdown

    # -- appending --------------------------------------------------------------------------
    async def append(self, anchors: Sequence[Anchor]) -> list[int]:
        """Append the anchors not yet in the log; the index of each, in order. A SQLite
        database busy beyond its timeout (other writers of the gateway database under load)
        is tried again a few times before the append fails."""
        for attempt in range(LOCKED_ATTEMPTS):
            try:
                return await self._append(anchors)
            except OperationalError as exc:
                if "locked" not in str(exc) or attempt == LOCKED_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _append(self, anchors: Sequence[Anchor]) -> list[int]:
        if not anchors:
            return []
        async with self._lock, self.engine.begin() as conn:
            now = datetime.now(UTC)
            moved = await conn.execute(
                update(HEAD).where(HEAD.c.id == HEAD_ID).values(updated_at=now)
            )
            if moved.rowcount == 0:
                await conn.execute(
                    HEAD.insert().values(id=HEAD_ID, size=0, frontier=b"", updated_at=now)
                )
            head = (await conn.execute(select(HEAD).where(HEAD.c.id == HEAD_ID))).one()
            known = await self._known(conn, anchors)
            frontier = _frontier_of(head.frontier, head.size)
            leaves, nodes, out = [], [], []
            for anchor in anchors:
                key = (anchor.kind, anchor.source, anchor.record_id)
                if key in known:
                    out.append(known[key])
                    continue
                index = frontier.size
                entry = _entry(anchor, index)
                leaf = merkle.leaf_hash(entry)
                frontier.append(leaf, lambda level, j, h: nodes.append((level, j, h)))
                leaves.append(
                    {
                        "idx": index,
                        "kind": anchor.kind,
                        "source": anchor.source,
                        "record_id": anchor.record_id,
                        "leaf_hash": leaf,
                        "entry": entry,
                        "anchored_at": now,
                    }
                )
                known[key] = index
                out.append(index)
            if leaves:
                await conn.execute(LEAVES.insert(), leaves)
                if nodes:
                    await conn.execute(
                        NODES.insert(), [{"level": lv, "idx": j, "hash": h} for lv, j, h in nodes]
                    )
                await conn.execute(
                    update(HEAD)
                    .where(HEAD.c.id == HEAD_ID)
                    .values(size=frontier.size, frontier=b"".join(frontier.hashes()))
                )
            return out

    @staticmethod
    async def _known(conn: AsyncConnection, anchors: Sequence[Anchor]) -> dict:
        ids = sorted({a.record_id for a in anchors})
        kinds = sorted({a.kind for a in anchors})  # (kind, record_id) is the index
        rows = await conn.execute(
            select(LEAVES.c.kind, LEAVES.c.source, LEAVES.c.record_id, LEAVES.c.idx).where(
                LEAVES.c.kind.in_(kinds), LEAVES.c.record_id.in_(ids)
            )
        )
        return {(r.kind, r.source, r.record_id): r.idx for r in rows}

    # -- reading ----------------------------------------------------------------------------
    async def entries(self, keys: Sequence[tuple[str, str, str]]) -> dict[tuple, dict]:
        """The leaf entries of (kind, source, record id) keys that are anchored."""
        if not keys:
            return {}
        ids = sorted({k[2] for k in keys})
        kinds = sorted({k[0] for k in keys})
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(LEAVES.c.kind, LEAVES.c.source, LEAVES.c.record_id, LEAVES.c.entry).where(
                    LEAVES.c.kind.in_(kinds), LEAVES.c.record_id.in_(ids)
                )
            )
            found = {(r.kind, r.source, r.record_id): json.loads(r.entry) for r in rows}
        return {k: found[k] for k in keys if k in found}

    async def size(self) -> int:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(select(HEAD.c.size).where(HEAD.c.id == HEAD_ID))
            ).scalar() or 0

    # -- checkpoints and proofs -------------------------------------------------------------
    async def checkpoint(self) -> tuple[int, str]:
        """The newest signed checkpoint, signing one first if the log grew since."""
        try:
            stored = await self._checkpoint()
        except IntegrityError:  # another worker stored this size first: theirs stands
            stored = None
        if stored is not None:
            size, note, new = stored
            if new and self.on_checkpoint is not None:
                self.on_checkpoint(size, note)
            return size, note
        async with self.engine.connect() as conn:
            last = (
                await conn.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.size.desc()).limit(1))
            ).one()
        return last.size, last.note

    async def _checkpoint(self) -> tuple[int, str, bool]:
        async with self.engine.begin() as conn:
            head = (await conn.execute(select(HEAD).where(HEAD.c.id == HEAD_ID))).first()
            size = 0 if head is None else head.size
            last = (
                await conn.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.size.desc()).limit(1))
            ).first()
            if last is not None and last.size == size:
                return last.size, last.note, False
            root = merkle.EMPTY_ROOT if head is None else _frontier_of(head.frontier, size).root()
            note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
            await conn.execute(
                CHECKPOINTS.insert().values(
                    size=size, root=root, note=note, created_at=datetime.now(UTC)
                )
            )
        return size, note, True

    async def proof(self, index: int) -> RecordProof:
        size, note = await self.checkpoint()
        if not 0 <= index < size:
            raise RecordsLogError(f"no record {index} in a log of {size}")
        async with self.engine.connect() as conn:
            leaf = (await conn.execute(select(LEAVES).where(LEAVES.c.idx == index))).one()
            ranges = merkle.inclusion_ranges(index, size)
            proof = await _range_hashes(conn, ranges)
            root = (
                await conn.execute(select(CHECKPOINTS.c.root).where(CHECKPOINTS.c.size == size))
            ).scalar_one()
        return RecordProof(index, json.loads(leaf.entry), leaf.leaf_hash, size, root, proof, note)

    # -- verification -----------------------------------------------------------------------
    async def verify(
        self, verifier: Verifier, *, external_note: str | None = None, chunk: int = 20_000
    ) -> LogCheck:
        """The audit log's verifier over this log's tables: every leaf recomputed from its
        entry, the tree from every leaf, each stored subtree, the head, every checkpoint's
        root and signature, and ``external_note`` (the newest checkpoint kept outside the
        database: the file of notes, a witness) which the leaves must still extend.
        Raises ``NoteError`` if that note does not verify."""
        report = await verify_log(
            self.engine,
            [verifier],
            origin=self.origin,
            external_note=external_note,
            chunk=chunk,
            derived=False,
            log=RECORDS_TABLES,
        )
        return LogCheck(
            report.size,
            report.ok,
            [p.detail for p in report.problems],
            signed_size=report.signed_size,
            checkpoints=report.checkpoints,
        )

    async def consistency_path(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof from ``old_size`` to ``new_size`` (for a witness)."""
        async with self.engine.connect() as conn:
            return await _range_hashes(conn, merkle.consistency_ranges(old_size, new_size))

    async def leaves(self, batch: int = 20_000):
        """Every leaf entry, in order, in batches (for checking records at their sources)."""
        after = -1
        async with self.engine.connect() as conn:
            while True:
                rows = (
                    await conn.execute(
                        select(LEAVES.c.idx, LEAVES.c.entry)
                        .where(LEAVES.c.idx > after)
                        .order_by(LEAVES.c.idx)
                        .limit(batch)
                    )
                ).all()
                if not rows:
                    return
                yield [json.loads(r.entry) for r in rows]
                after = rows[-1].idx

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(LEAVES))).scalar_one()


@dataclass
class LogCheck:
    size: int
    ok: bool
    problems: list[str]
    signed_size: int = 0  # the last checkpoint the leaves matched
    checkpoints: int = 0  # checkpoints whose signature and root were checked


def _claimed_index(entry: bytes) -> int | None:
    """The index an entry was hashed with: its canonical JSON has ``index`` after ``digest``
    and ``id``; anything else is not an entry of this log."""
    match = _ENTRY_HEAD.match(entry)
    if match:
        return int(match.group(1))
    try:
        body = json.loads(entry)
    except ValueError:
        return None
    index = body.get("index") if isinstance(body, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


_ENTRY_HEAD = re.compile(
    rb'\{"digest":"[0-9a-f]{1,128}","id":"[0-9A-Za-z_-]{1,64}","index":(0|[1-9][0-9]{0,18}),'
)


def _head_root(head: Any) -> bytes:
    try:
        return _frontier_of(head.frontier, head.size).root()
    except Exception:  # a head row edited into nonsense differs from every root
        return b""


RECORDS_TABLES = LogTables(
    LEAVES, NODES, CHECKPOINTS, HEAD, _claimed_index, _head_root, derived=False
)


async def _range_hashes(conn: AsyncConnection, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    try:
        return await audit_range_hashes(
            conn, ranges, leaves_table=LEAVES, nodes_table=NODES, log_name="records"
        )
    except AuditLogError as exc:
        raise RecordsLogError(str(exc)) from None
