"""Tables of the audit log in the gateway's own database.

``audit_events`` holds the leaves; ``audit_nodes`` every complete subtree above them (about
one row per event), so appends and proofs touch O(log n) rows; ``audit_head`` is the single
row writers lock to serialise appends across processes and that remembers the right edge
of the tree; ``audit_checkpoints`` keeps every signed tree head. Only events and
checkpoints are evidence: nodes and head are caches that ``verify`` recomputes and checks.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, SmallInteger, Text
from sqlalchemy.orm import Mapped, mapped_column

from security.store import GatewayBase

HEAD_ID = 1


class AuditEvent(GatewayBase):
    __tablename__ = "audit_events"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The leaf data: canonical JSON {"event": ..., "index": ..., "logged_at": ...}.
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditNode(GatewayBase):
    __tablename__ = "audit_nodes"

    # Subtree ``idx`` at ``level`` covers leaves [idx * 2**level, (idx + 1) * 2**level).
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHead(GatewayBase):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    # Concatenated hashes of the complete subtrees on the right edge, largest first.
    frontier: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditCheckpoint(GatewayBase):
    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
