"""Tables of the audit log in the gateway's own database.

``audit_events`` holds the leaves; ``audit_nodes`` every complete subtree above them (about
one row per event), so appends and proofs touch O(log n) rows; ``audit_head`` is the single
row writers lock to serialise appends across processes and that remembers the right edge
of the tree; ``audit_checkpoints`` keeps every signed tree head. Only events and
checkpoints are evidence: nodes and head are caches that ``verify`` recomputes and checks.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
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


class AuditIndexRow(GatewayBase):
    """The auditors' query index: one row per (event, person) with the filter columns.

    Derived from the log right after each append (and rebuilt from it by
    :func:`security.audit.index.catch_up`); the log stays the evidence, this is a cache that
    may be dropped and rebuilt at any time.
    """

    __tablename__ = "audit_index"
    # The alert rules' per-principal windows (gateway_0007).
    __table_args__ = (Index("ix_audit_index_sub_at", "sub", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idx: Mapped[int] = mapped_column(BigInteger, index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    person: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    sub: Mapped[str | None] = mapped_column(String(255), nullable=True)  # see __table_args__
    org: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(32), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    break_glass: Mapped[bool] = mapped_column(Boolean, default=False)
    # Classes of the fields read, masked or denied, as ",identity,visit," for LIKE matching.
    field_classes: Mapped[str] = mapped_column(Text, default=",")
    # A field of this person was denied while the caller had no relation to them (probing).
    denied_unrelated: Mapped[bool] = mapped_column(Boolean, default=False)
    # The event's parties (the caller's organisation and the data holders') and their regions,
    # as ",H33010600001,330000," and ",330106,330000,": the auditors' scope (gateway_0012).
    party_orgs: Mapped[str] = mapped_column(Text, default=",", server_default=",")
    party_regions: Mapped[str] = mapped_column(Text, default=",", server_default=",")


class AuditAlert(GatewayBase):
    """One alert and its current state, derived from the log like ``audit_index``.

    An alert is opened by a logged event (a request that broke the glass opens its own; a
    rule's alert is an ``ALERT`` event of its own) and keeps that event's index as ``id``. Its
    state and owner are changed only by ``ALERT`` change events (``handleAlert``,
    ``closeAlert``; the state model of :mod:`security.audit.alert_state`); ``state_idx`` is the
    index of the event that set the current state (``id`` while never changed), which is what
    lets ``medfed audit verify`` check every state against the log in one pass.
    """

    __tablename__ = "audit_alerts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, index=True)  # the event that fired it
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    rule: Mapped[str] = mapped_column(String(32), index=True)
    grade: Mapped[int] = mapped_column(Integer)  # 1 notice … 4 blocking (alert_state)
    sub: Mapped[str | None] = mapped_column(String(255), nullable=True)
    org: Mapped[str | None] = mapped_column(String(64), nullable=True)
    person: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    # A break-glass alert's reason: its code and the free text as a field ciphertext, bound
    # to the request that broke the glass (its id is the ciphertext's row key).
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason_text: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # OPEN | ACKNOWLEDGED | …
    state_idx: Mapped[int] = mapped_column(BigInteger, index=True)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    changed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)  # issuer|sub
    changed_org: Mapped[str | None] = mapped_column(String(64), nullable=True)
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # a field ciphertext


class AuditWrite(GatewayBase):
    """The writes the log names: one row per intent and per outcome event of a mutation.

    Derived from the log in the event's own transaction, like ``audit_index``; it answers
    "which intents have no outcome yet" (``auditEvents(filter: {pendingWrites: true})``,
    ``medfed audit reconcile``) without reading every event.
    """

    __tablename__ = "audit_writes"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The intent this row belongs to: its own index for an intent, the intent's for an
    # outcome (one request's event may hold the outcomes of several writes).
    intent: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=False, index=True
    )
    phase: Mapped[str] = mapped_column(String(8))  # INTENT | OUTCOME
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WitnessCheckpoint(GatewayBase):
    """What this gateway, as a witness of other logs, last cosigned for each of them."""

    __tablename__ = "witness_checkpoints"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)  # the log's note with our cosignature
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
