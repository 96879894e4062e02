"""The tamper-evident audit log: an RFC 6962 Merkle tree of events in the gateway database,
with C2SP signed checkpoints, inclusion and consistency proofs, and a verifier.

The request path needs :func:`open_audit_log` once per process, then ``await
log.append(event)`` per access (raises :class:`AuditWriteError`: answer 503, never
unaudited) and ``await log.close()`` on shutdown.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from security.audit.log import (
    AuditLog,
    AuditLogConfig,
    AuditLogError,
    AuditWriteError,
    ConsistencyProof,
    InclusionProof,
    Receipt,
    SignedCheckpoint,
    consistency_proof,
    inclusion_proof,
    latest_checkpoint,
)
from security.audit.note import Checkpoint, NoteError, open_checkpoint
from security.audit.signer import (
    AuditKeyError,
    Signer,
    Verifier,
    load_or_create_ed25519,
    load_or_create_signer,
    parse_verifier_key,
    verifier_key_string,
)
from security.audit.verify import VerifyReport, verify_log

__all__ = [
    "AuditKeyError",
    "AuditLog",
    "AuditLogConfig",
    "AuditLogError",
    "AuditWriteError",
    "Checkpoint",
    "ConsistencyProof",
    "InclusionProof",
    "NoteError",
    "Receipt",
    "SignedCheckpoint",
    "Signer",
    "Verifier",
    "VerifyReport",
    "consistency_proof",
    "inclusion_proof",
    "latest_checkpoint",
    "load_or_create_ed25519",
    "load_or_create_signer",
    "open_audit_log",
    "open_checkpoint",
    "parse_verifier_key",
    "verifier_key_string",
    "verify_log",
]


def open_audit_log(
    engine: AsyncEngine,
    keys_dir: Path,
    config: AuditLogConfig | None = None,
    profile: str = "standard",
) -> AuditLog:
    """The log on ``engine`` signing checkpoints with the crypto profile's key in
    ``keys_dir`` (Ed25519 ``audit-log.pem``, or SM2 ``audit-log.sm2`` under "national"; made
    on first use, its verifier key published as ``audit-log.pub``). Its derived tables are
    written with every append (:mod:`security.audit.derive`): whatever appends to the log,
    ``medfed audit verify`` finds them as the log says."""
    from security.audit import derive

    config = config or AuditLogConfig()
    opened = AuditLog(engine, load_or_create_signer(keys_dir, config.origin, profile), config)
    opened.derive = derive.rows
    return opened
