"""The auditors' read API on the audit log, and a patient's "who looked at my data".

Every answer is read from the log's own leaves (``audit_events``); the ``audit_index``
table only chooses which leaves. Auditors (role ``auditor`` with purpose AUDIT) see the
events of their scope (``[audit_scope]`` of the policy: their organisation as actor or data
holder, or their region; a national auditor every event), and the alerts those events fired;
a patient sees only the events that touched their own record, and in each only their own
entry.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import select

from schema.enums import AuditKind, AuditOutcome, PurposeOfUse, enum_or_none
from schema.errors import bad_input, forbidden
from schema.pagination import Connection, connection, decode_cursor, page_size
from schema.times import stored
from schema.types.handling import WarningState
from schema.types.institution import Institution, institution_of
from security.audit import AuditLogError, AuditWriteError, index
from security.audit.alert_state import CLOSED_STATES, LEGACY_CLOSED
from security.audit.alert_state import KIND as ALERT_KIND
from security.audit.events import Kind, Outcome, note_audit_read
from security.audit.index import in_scope, scope_clauses
from security.audit.models import AuditAlert, AuditEvent, AuditIndexRow
from security.audit.writes import APPLIED, INTENT, NOT_APPLIED, outcomes_in
from security.crypto.field_cipher import DecryptionError
from security.enforcement import Relation
from security.identity.roles import Role
from security.policy.audit_access import audit_log_refusal
from security.policy.audit_scope import AuditScope, Sight
from security.policy.break_glass import GATEWAY_KEY_SOURCE, NOTE_CELL, REASON_CELL

log = logging.getLogger("medfed.audit")

# The output enums answer every value the log writes; they must never drift apart. A value they
# do not know (an event a later version logged) is answered as null, not as an error.
assert {m.value for m in AuditKind} == {*map(str, Kind), ALERT_KIND}
assert {m.value for m in AuditOutcome} == {*map(str, Outcome), INTENT, APPLIED, NOT_APPLIED}

RECORDER = "audit"
PAGE_ARGS = "first: at most 100 (default 20); after: a cursor from pageInfo.endCursor."


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@strawberry.type(description="Who made an audited request, as their token proved it.")
class AuditPrincipal:
    sub: str
    role: str
    org: str
    issuer: str
    cert_type: str | None = strawberry.field(
        default=None,
        description="A patient's credential (mdtrt_cert_type): 01 e-credential, 02 ID card, "
        "03 social-security card.",
    )
    acr: str | None = strawberry.field(
        default=None,
        description="The assurance of the caller's identity check: credential, real_name or "
        "real_person.",
    )

    @strawberry.field(
        description="The caller's organisation in the directory (null for a region's body "
        "or an organisation the directory does not list)."
    )
    async def institution(self, info: strawberry.Info) -> Institution | None:
        return await institution_of(info, self.org)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> AuditPrincipal:
        return cls(
            sub=raw["sub"],
            role=raw["role"],
            org=raw["org"],
            issuer=raw["issuer"],
            cert_type=raw.get("certType"),
            acr=raw.get("acr"),
        )


@strawberry.type(description="One field of a person touched by a request.")
class AuditField:
    field: str = strawberry.field(description="Type.field, e.g. Person.name.")
    data_class: str | None = strawberry.field(description="Data class from the catalogue.")
    level: int | None = strawberry.field(description="GB/T 39725 level from the catalogue.")
    reason: str | None = strawberry.field(
        default=None, description="Why a denied field was denied (the policy's reason)."
    )

    @classmethod
    def of(cls, raw: dict[str, Any]) -> AuditField:
        return cls(
            field=raw["field"],
            data_class=raw.get("class"),
            level=raw.get("level"),
            reason=raw.get("reason"),
        )


@strawberry.type(description="What one request did with one person's data.")
class AuditPerson:
    person_id: str | None = strawberry.field(description="The person's pseudonym (personId).")
    relation: str | None = strawberry.field(
        description="The caller's relation to the person where a field was denied."
    )
    read: list[AuditField]
    masked: list[AuditField]
    denied: list[AuditField]

    @classmethod
    def of(cls, raw: dict[str, Any]) -> AuditPerson:
        return cls(
            person_id=raw.get("personId"),
            relation=raw.get("relation"),
            read=[AuditField.of(f) for f in raw.get("read", [])],
            masked=[AuditField.of(f) for f in raw.get("masked", [])],
            denied=[AuditField.of(f) for f in raw.get("denied", [])],
        )


@strawberry.type(
    description="A write a mutation made or meant to make: its intent is logged before the "
    "write reaches the source, its outcome after (or by reconcile)."
)
class AuditWrite:
    phase: str = strawberry.field(description="INTENT or OUTCOME.")
    operation: str = strawberry.field(description="The mutation, e.g. publishTestResult.")
    source: str = strawberry.field(description="Where the change lands (a source, or gateway).")
    object_id: str = strawberry.field(description="The key of the object written there.")
    intent: int | None = strawberry.field(description="An outcome's intent (its log index).")
    result: str | None = strawberry.field(description="An outcome's APPLIED or NOT_APPLIED.")
    decided_by: str | None = strawberry.field(
        description="An outcome's author: request (the write itself) or reconcile."
    )

    @classmethod
    def all_of(cls, event: dict[str, Any]) -> list[AuditWrite]:
        """An intent's write, an outcome event's, or the outcomes a request's event holds."""
        if event.get("phase") == "INTENT" and isinstance(event.get("write"), dict):
            found = [("INTENT", event["write"])]
        else:
            found = [("OUTCOME", w) for w in outcomes_in(event)]
        return [
            cls(
                phase=phase,
                operation=raw.get("operation", ""),
                source=raw.get("source", ""),
                object_id=raw.get("objectId", ""),
                intent=raw.get("intent"),
                result=raw.get("result"),
                decided_by=raw.get("by"),
            )
            for phase, raw in found
        ]


@strawberry.type(name="AuditEvent", description="One event of the tamper-evident audit log.")
class AuditEventNode:
    index: int = strawberry.field(description="Position in the log (prove it with auditProof).")
    time: datetime = strawberry.field(description="When the request was made.")
    logged_at: datetime = strawberry.field(description="When the log appended it.")
    kind: AuditKind | None = strawberry.field(
        description="What the event records (null for a kind this gateway does not know)."
    )
    request_id: str = strawberry.field(
        description="The gateway's id of the request (the X-Request-Id it answered)."
    )
    client_request_id: str | None = strawberry.field(
        description="The X-Request-Id the client offered, if any (chosen by the client, so "
        "not unique)."
    )
    principal: AuditPrincipal | None
    purpose: PurposeOfUse | None
    break_glass: bool
    outcome: AuditOutcome | None = strawberry.field(
        description="How it ended (null for an outcome this gateway does not know)."
    )
    persons: list[AuditPerson]
    sources_touched: list[str]
    sources_failed: list[str]
    error_codes: list[str]
    client_address: str | None
    operation_name: str | None
    operation_sha256: str | None
    reason: str | None = strawberry.field(description="Why an authentication was refused.")
    writes: list[AuditWrite] = strawberry.field(
        description="The writes it names: a mutation's intent, or the outcomes of writes "
        "(logged with the request that made them, or by reconcile)."
    )

    @classmethod
    def of(
        cls, idx: int, event: dict[str, Any], logged_at: str, only_person: str | None = None
    ) -> AuditEventNode:
        principal = event.get("principal")
        persons = event.get("persons") or []
        if only_person is not None:
            persons = [p for p in persons if p.get("personId") == only_person]
        operation = event.get("operation") or {}
        sources = event.get("sources") or {}
        return cls(
            index=idx,
            time=datetime.fromisoformat(event["time"]),
            logged_at=datetime.fromisoformat(logged_at),
            kind=enum_or_none(AuditKind, event.get("kind")),
            request_id=event.get("requestId", ""),
            client_request_id=event.get("clientRequestId"),
            principal=AuditPrincipal.of(principal) if principal else None,
            purpose=enum_or_none(PurposeOfUse, event.get("purpose")),
            break_glass=bool(event.get("breakGlass")),
            outcome=enum_or_none(AuditOutcome, event.get("outcome")),
            persons=[AuditPerson.of(p) for p in persons],
            sources_touched=sources.get("touched", []),
            sources_failed=sources.get("failed", []),
            error_codes=event.get("errors", []),
            client_address=None if only_person is not None else event.get("client"),
            operation_name=operation.get("name"),
            operation_sha256=operation.get("sha256"),
            reason=(event.get("request") or {}).get("reason"),
            writes=AuditWrite.all_of(event),
        )


@strawberry.input(description="Which audit events to list; every given condition must hold.")
class AuditEventFilter:
    person: str | None = strawberry.field(default=None, description="A personId.")
    org: str | None = None
    principal: str | None = strawberry.field(default=None, description="The caller's sub.")
    role: str | None = None
    purpose: PurposeOfUse | None = None
    outcome: AuditOutcome | None = None
    break_glass: bool | None = None
    field_class: str | None = strawberry.field(
        default=None, description="A data class (identity, diagnosis, ...) read, masked or denied."
    )
    from_: datetime | None = strawberry.field(
        default=None, name="from", description="Events at or after this time."
    )
    to: datetime | None = strawberry.field(default=None, description="Events before this time.")
    pending_writes: bool | None = strawberry.field(
        default=None,
        description="True: only write intents that no outcome names yet (a process stopped "
        "between them; `medfed audit reconcile` settles them).",
    )


@strawberry.type(description="A signed checkpoint (C2SP signed note) of the audit log.")
class AuditCheckpoint:
    note: str
    size: int
    root_hash: str = strawberry.field(description="Merkle root, base64.")


@strawberry.type(description="RFC 6962 inclusion proof of one event in a tree of `size`.")
class AuditInclusionProof:
    index: int
    size: int
    leaf_hash: str
    root_hash: str
    path: list[str]
    entry: str = strawberry.field(
        description="The leaf as logged: canonical JSON {event, index, logged_at} whose "
        "SHA-256(0x00 || UTF-8 bytes) is the leaf hash, so a verifier hashes it itself."
    )


@strawberry.type(description="RFC 6962 consistency proof between two tree sizes.")
class AuditConsistencyProof:
    from_size: int
    from_root: str
    to_size: int
    to_root: str
    path: list[str]


@strawberry.type(
    name="AuditAlert",
    description="An alert: opened by a logged event (a break-glass, or a rule's verdict), "
    "closed by a security officer with a note; every change is an audit event.",
)
class AuditAlertNode:
    id: int = strawberry.field(description="The log index of the event that opened it.")
    index: int = strawberry.field(description="The log index of the event that fired it.")
    time: datetime
    rule: str = strawberry.field(description="BREAK_GLASS, VOLUME_SPIKE, PROBING or OFF_HOURS.")
    grade: int = strawberry.field(
        description="1 notice, 2 attention, 3 serious (the grades of the supervision "
        "warnings; no access alert blocks)."
    )
    principal: str | None
    org: str | None
    person_id: str | None
    detail: str
    state: WarningState = strawberry.field(
        description="OPEN, ACKNOWLEDGED, RESOLVED or FALSE_POSITIVE (handleAlert)."
    )
    owner: str | None = strawberry.field(description="Who handles it (handleAlert ASSIGN).")
    state_index: int = strawberry.field(
        description="The log index of the event that set the state (the id while OPEN)."
    )
    changed_by: str | None = strawberry.field(description="Who set the state (sub).")
    changed_org: str | None = strawberry.field(description="Their organisation.")
    changed_at: datetime | None = strawberry.field(description="When the state was set.")
    reason_code: str | None = strawberry.field(
        description="A break-glass alert's reason code (docs/policy.md lists them)."
    )
    reason_text: str | None = strawberry.field(
        description="A break-glass alert's reason as the clinician wrote it (stored encrypted)."
    )
    note: str | None = strawberry.field(
        description="The note of whoever set the state (stored encrypted)."
    )

    @classmethod
    def of(cls, r: Any, cipher: Any = None) -> AuditAlertNode:
        return cls(
            id=r["id"],
            index=r["idx"],
            time=stored(r["at"]),
            rule=r["rule"],
            principal=r["sub"],
            org=r["org"],
            person_id=r["person"],
            detail=r["detail"],
            grade=r["grade"],
            state=WarningState(r["state"]),
            owner=r["owner"],
            state_index=r["state_idx"],
            changed_by=r["changed_by"],
            changed_org=r["changed_org"],
            changed_at=stored(r["changed_at"]),
            reason_code=r["reason_code"],
            reason_text=_opened(cipher, r["reason_text"], REASON_CELL, r["request_id"]),
            note=_opened(cipher, r["note"], NOTE_CELL, str(r["id"])),
        )


def _opened(cipher: Any, blob: bytes | None, cell: tuple[str, str], row_key: str | None):
    """A ciphertext of the gateway's own key opened for the auditor, or None (a value that
    does not open is reported by where it is, never by what it holds)."""
    if cipher is None or blob is None or row_key is None:
        return None
    table, column = cell
    try:
        return cipher.decrypt(
            bytes(blob), source=GATEWAY_KEY_SOURCE, table=table, column=column, row_key=row_key
        )
    except DecryptionError as exc:
        log.warning("alert value does not open: %s", exc)
        return None


def auditor_scope(ctx: Any, what: str) -> AuditScope:
    """The calling auditor's scope ([audit_scope] of the policy). Whether the caller may
    read the log at all is the field policy's (security.policy.audit_access)."""
    services = ctx.services
    refused = audit_log_refusal(
        ctx.principal, ctx.purpose, Relation.NONE, services.catalogue, services.decider
    )
    if refused is not None:
        raise forbidden(f"{what}: the policy does not let you read the audit log ({refused})")
    return services.policy.auditor_scope(ctx.principal.org)


def recorder_of(ctx: Any):
    recorder = ctx.services.extras.get(RECORDER)
    if recorder is None:
        raise forbidden("the audit log is disabled on this gateway")
    return recorder


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


async def _events(
    ctx: Any,
    flt: index.EventFilter,
    first: int | None,
    after: str | None,
    only_person: str | None = None,
) -> Connection[AuditEventNode]:
    recorder = recorder_of(ctx)
    limit = page_size(first)
    cursor = decode_cursor(after, (int,))
    await recorder.log()  # opens the log and brings the index up to date with it
    await recorder.settled()
    found = await index.find_events(recorder.engine, flt, cursor[0] if cursor else None, limit + 1)
    return connection(
        [((i,), AuditEventNode.of(i, e, at, only_person)) for i, e, at in found], limit, after
    )


@strawberry.type
class AuditQuery:
    @strawberry.field(description="Audit events, newest first (auditors only). " + PAGE_ARGS)
    async def audit_events(
        self,
        info: strawberry.Info,
        filter: AuditEventFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AuditEventNode]:
        ctx = info.context
        note_audit_read(ctx, "Query.auditEvents")
        scope = auditor_scope(ctx, "auditEvents")
        f = filter or AuditEventFilter()
        flt = index.EventFilter(
            scope=scope,
            person=f.person,
            org=f.org,
            principal=f.principal,
            role=f.role,
            purpose=f.purpose.value if f.purpose else None,
            outcome=f.outcome.value if f.outcome else None,
            break_glass=f.break_glass,
            field_class=f.field_class,
            since=_utc(f.from_),
            until=_utc(f.to),
            pending_writes=bool(f.pending_writes),
        )
        return await _events(ctx, flt, first, after)

    @strawberry.field(
        description="Who read, or tried to read, the calling patient's record, "
        "newest first (patients only). " + PAGE_ARGS
    )
    async def my_access_log(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[AuditEventNode]:
        ctx = info.context
        note_audit_read(ctx, "Query.myAccessLog")
        ref = ctx.principal.person_ref
        if ctx.principal.role is not Role.PATIENT or not ref:
            raise forbidden("myAccessLog is only for patients")
        services = ctx.services
        refused = audit_log_refusal(
            ctx.principal, ctx.purpose, Relation.SELF, services.catalogue, services.decider
        )
        if refused is not None:
            raise forbidden(f"myAccessLog: the policy does not let you read it ({refused})")
        return await _events(ctx, index.EventFilter(person=ref), first, after, only_person=ref)

    @strawberry.field(
        description="The latest signed checkpoint, signing one now if events "
        "are unsigned (auditors only)."
    )
    async def audit_checkpoint(self, info: strawberry.Info) -> AuditCheckpoint:
        ctx = info.context
        note_audit_read(ctx, "Query.auditCheckpoint")
        auditor_scope(ctx, "auditCheckpoint")
        try:
            signed = await (await recorder_of(ctx).log()).checkpoint()
        except (AuditLogError, AuditWriteError) as exc:
            raise forbidden(f"no checkpoint: {exc}") from None
        return AuditCheckpoint(note=signed.note, size=signed.size, root_hash=_b64(signed.root))

    @strawberry.field(
        description="Inclusion proof of event `index` in the tree of `size` "
        "events (default: the whole log) (auditors only)."
    )
    async def audit_proof(
        self, info: strawberry.Info, index: int, size: int | None = None
    ) -> AuditInclusionProof:
        ctx = info.context
        note_audit_read(ctx, "Query.auditProof")
        scope = auditor_scope(ctx, "auditProof")
        try:
            proof = await (await recorder_of(ctx).log()).inclusion_proof(index, size)
        except AuditLogError as exc:
            raise bad_input(str(exc), [{"path": ["index"], "reason": str(exc)}]) from None
        if scope.sight is not Sight.ALL:
            # The log's size is no secret to an auditor (auditCheckpoint); the leaf hash of
            # an event outside its scope is: it lets a guess of the event be confirmed.
            async with recorder_of(ctx).engine.connect() as conn:
                if not await in_scope(conn, index, scope):
                    raise forbidden(f"auditProof: no event {index} in your audit scope")
        async with recorder_of(ctx).engine.connect() as conn:
            entry = (
                await conn.execute(
                    select(AuditEvent.__table__.c.entry).where(AuditEvent.__table__.c.idx == index)
                )
            ).scalar_one()
        return AuditInclusionProof(
            entry=bytes(entry).decode("utf-8"),
            index=proof.index,
            size=proof.size,
            leaf_hash=_b64(proof.leaf_hash),
            root_hash=_b64(proof.root),
            path=[_b64(h) for h in proof.path],
        )

    @strawberry.field(
        description="Consistency proof that the tree of `toSize` extends the "
        "one of `fromSize` (auditors only)."
    )
    async def audit_consistency(
        self, info: strawberry.Info, from_size: int, to_size: int | None = None
    ) -> AuditConsistencyProof:
        ctx = info.context
        note_audit_read(ctx, "Query.auditConsistency")
        auditor_scope(ctx, "auditConsistency")
        try:
            proof = await (await recorder_of(ctx).log()).consistency_proof(from_size, to_size)
        except AuditLogError as exc:
            raise bad_input(str(exc), [{"path": ["fromSize"], "reason": str(exc)}]) from None
        return AuditConsistencyProof(
            from_size=proof.old_size,
            from_root=_b64(proof.old_root),
            to_size=proof.new_size,
            to_root=_b64(proof.new_root),
            path=[_b64(h) for h in proof.path],
        )

    @strawberry.field(description="Alerts, newest first (auditors only). " + PAGE_ARGS)
    async def audit_alerts(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        rule: Annotated[str | None, strawberry.argument(description="Only this rule.")] = None,
        state: Annotated[
            str | None,
            strawberry.argument(
                description="Only alerts in this state (OPEN, ACKNOWLEDGED, RESOLVED, "
                "FALSE_POSITIVE; CLOSED: either closed state)."
            ),
        ] = None,
        min_grade: Annotated[
            int | None, strawberry.argument(description="Only alerts of this grade or higher.")
        ] = None,
        owner: Annotated[
            str | None, strawberry.argument(description="Only alerts assigned to this owner.")
        ] = None,
    ) -> Connection[AuditAlertNode]:
        ctx = info.context
        note_audit_read(ctx, "Query.auditAlerts")
        scope = auditor_scope(ctx, "auditAlerts")
        recorder = recorder_of(ctx)
        await recorder.settled()
        limit = page_size(first)
        cursor = decode_cursor(after, (int,))
        table = AuditAlert.__table__
        query = select(table).order_by(table.c.id.desc()).limit(limit + 1)
        if clauses := scope_clauses(scope):  # an alert is in scope with the event that fired it
            events = AuditIndexRow.__table__
            query = query.where(table.c.idx.in_(select(events.c.idx).where(*clauses)))
        if cursor:
            query = query.where(table.c.id < cursor[0])
        if rule:
            query = query.where(table.c.rule == rule)
        if state == LEGACY_CLOSED:
            query = query.where(table.c.state.in_(sorted(CLOSED_STATES)))
        elif state:
            query = query.where(table.c.state == state)
        if min_grade is not None:
            query = query.where(table.c.grade >= min_grade)
        if owner is not None:
            query = query.where(table.c.owner == owner)
        async with recorder.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        cipher = ctx.services.cipher
        return connection([((r["id"],), AuditAlertNode.of(r, cipher)) for r in rows], limit, after)
