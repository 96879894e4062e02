"""`recordProof`: the records log's inclusion proof of one anchored original record, with
the signed checkpoint it is proven against (base64 hashes, RFC 6962; C2SP checkpoint note).

The leaf names the record (its table, source and id) and commits to it by a salted digest:
with the record itself (read through the API, as the policy allows) and the salt, anyone can
recompute the digest, the leaf hash, and the root the checkpoint signs. A proof goes to the
organisation holding the record and to auditors (it is evidence about that holder's records);
to anyone else the same answer as for a record never anchored.
"""

from __future__ import annotations

import base64
import json

import strawberry

from connectors.sql import anchoring as tables
from schema.anchoring import records_log
from schema.errors import bad_input, forbidden
from security.identity.roles import Role


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@strawberry.type(description="The inclusion of one original record in the records log.")
class RecordProof:
    kind: str = strawberry.field(description="The source table (test_results, …).")
    source: str = strawberry.field(description="The source holding the record.")
    record_id: str = strawberry.field(description="The record's primary key there.")
    index: int = strawberry.field(description="The leaf's index in the log.")
    entry: str = strawberry.field(
        description="The leaf data: canonical JSON {digest, id, index, kind, salt, source}."
    )
    leaf_hash: str = strawberry.field(description="SHA-256(0x00 || entry), base64.")
    tree_size: int = strawberry.field(description="The checkpoint's tree size.")
    root_hash: str = strawberry.field(description="The checkpoint's root hash, base64.")
    path: list[str] = strawberry.field(description="The inclusion proof, base64, leaf first.")
    checkpoint: str = strawberry.field(
        description="The signed checkpoint (C2SP signed note) the proof is against."
    )


@strawberry.type
class RecordsLogQuery:
    @strawberry.field(
        description="The records log's proof that an original record is anchored, or null when "
        "it is not (or the caller is neither its holder nor an auditor). `kind` is the "
        "record's table: " + ", ".join(sorted(tables.ANCHORED)) + "."
    )
    async def record_proof(
        self, info: strawberry.Info, kind: str, record_id: strawberry.ID
    ) -> list[RecordProof]:
        ctx = info.context
        if kind not in tables.ANCHORED:
            reason = "is not an anchored kind of record"
            raise bad_input(f"kind: {reason}", [{"path": ["kind"], "reason": reason}])
        principal = ctx.principal
        if principal.role not in (
            Role.AUDITOR,
            Role.CLINICIAN,
            Role.PHARMACIST,
            Role.INSURANCE_AGENCY,
            Role.SETTLEMENT_CENTER,
        ):
            raise forbidden("recordProof is for the record's holder and for auditors")
        log = records_log(ctx)
        if log is None:
            return []
        out = []
        for source in ctx.registry.of_kind(tables.ANCHORED[kind][0]):
            holder = ctx.registry.holder(source.name)
            if principal.role is not Role.AUDITOR and holder != principal.org:
                continue
            entries = await log.entries([(kind, source.name, str(record_id))])
            entry = entries.get((kind, source.name, str(record_id)))
            if entry is None:
                continue
            proof = await log.proof(entry["index"])
            out.append(
                RecordProof(
                    kind=kind,
                    source=source.name,
                    record_id=str(record_id),
                    index=proof.index,
                    entry=json.dumps(
                        proof.entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                    ),
                    leaf_hash=_b64(proof.leaf_hash),
                    tree_size=proof.tree_size,
                    root_hash=_b64(proof.root),
                    path=[_b64(p) for p in proof.proof],
                    checkpoint=proof.checkpoint,
                )
            )
        return out
