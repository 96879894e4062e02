"""The records log (上链存证): every published original record, hashed in a canonical form
into a Merkle log with signed checkpoints, separate from the audit log but built on its code
(``security.audit.merkle`` trees and proofs, ``security.audit.note`` C2SP checkpoints,
``security.audit.signer`` keys)."""

from security.records.log import (
    Anchor,
    RecordProof,
    RecordsLog,
    RecordsLogError,
    load_records_signer,
)

__all__ = ["Anchor", "RecordProof", "RecordsLog", "RecordsLogError", "load_records_signer"]
