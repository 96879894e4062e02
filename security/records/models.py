"""Tables of the records log in the gateway's own database, shaped like the audit log's:
leaves (one per anchored record, the evidence), the complete subtrees above them and the head
(caches ``medfed records verify`` recomputes), and every signed checkpoint."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from security.store import GatewayBase


class RecordLeaf(GatewayBase):
    __tablename__ = "records_log_leaves"
    __table_args__ = (Index("ix_records_log_leaves_record", "kind", "record_id"),)

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))  # the source table: test_results, …
    source: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(64))
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The leaf data: canonical JSON {"digest", "id", "index", "kind", "salt", "source", …}.
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    anchored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecordNode(GatewayBase):
    __tablename__ = "records_log_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class RecordHead(GatewayBase):
    __tablename__ = "records_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecordCheckpoint(GatewayBase):
    __tablename__ = "records_log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
