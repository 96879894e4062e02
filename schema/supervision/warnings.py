"""Risk warnings with graded handling (风险预警分级处置): supervisors list and filter the
warnings of their region, assign them, acknowledge them and close them as RESOLVED (a
confirmed violation) or FALSE_POSITIVE, each change with a note; confirmed violations build
a credit record per institution and per doctor. Who may do what, in which region, is the
policy file's ``[[supervision]]`` (views ``warnings``, ``handle``, ``credit``), from the
verified token's role, purpose and organisation: being a warning's owner grants nothing.
Every read is audited; every change is an ``ALERT`` change event that sets the warning's
state, owner and history in the log's own transaction (the state model the access alerts
share, :mod:`schema.mutations.handling`), so ``medfed audit verify`` proves them."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import select

from schema.errors import NOT_FOUND, bad_input
from schema.mutations.handling import (
    WarningAction,
    WarningState,
    change,
    check_input,
    next_state,
    one_at_a_time,
)
from schema.mutations.idempotent import Created, IdempotentCall
from schema.mutations.validation import Problems
from schema.pagination import Connection, connection, decode_cursor, page_size
from schema.supervision.monitoring import _engine, months, scope
from schema.times import stored
from security import warnings as store
from security.crypto.field_cipher import DecryptionError
from security.policy.break_glass import GATEWAY_KEY_SOURCE

__all__ = ["SupervisionWarning", "WarningAction", "WarningState", "handle_warning"]
log = logging.getLogger("medfed.supervision")
GATEWAY = "gateway"
KEY_DESCRIPTION = (
    "Client-chosen key (1-64 of A-Z a-z 0-9 _ -): the same key with the same input acts once "
    "(the answer says replayed)."
)


@strawberry.type(description="One change of a warning, with its note.")
class WarningNote:
    at: datetime
    by: str = strawberry.field(description="The supervisor: issuer|subject|organisation.")
    action: str
    from_state: str
    to_state: str
    owner: str | None
    note: str | None = strawberry.field(description="The note (stored encrypted).")


@strawberry.type(description="A fund-supervision warning: one rule hit on one claim.")
class SupervisionWarning:
    warning_id: strawberry.ID
    rule: str
    grade: int = strawberry.field(description="1 notice, 2 attention, 3 serious, 4 blocking.")
    phase: str = strawberry.field(description="PRE (before settlement) or POST (the scan).")
    settlement_id: str | None
    visit_id: str | None
    clearing_id: str | None
    person_id: str | None = strawberry.field(
        description="The person's pseudonymous personId (none for a clearing)."
    )
    institution_code: str | None
    doctor_code: str | None
    insured_region: str
    treatment_region: str
    settled_at: datetime | None
    detail: str
    found_at: datetime
    state: WarningState
    owner: str | None
    changed_at: datetime | None = strawberry.field(description="When the state last changed.")
    state_index: int | None = strawberry.field(
        description="The audit-log index of the change that set the state (none while OPEN "
        "and never changed)."
    )
    notes: list[WarningNote]

    @classmethod
    def of(
        cls, row: dict[str, Any], notes: list[dict[str, Any]], cipher: Any
    ) -> SupervisionWarning:
        return cls(
            warning_id=strawberry.ID(row["warning_id"]),
            rule=row["rule"],
            grade=row["grade"],
            phase=row["phase"],
            settlement_id=row["setl_id"],
            visit_id=row["mdtrt_id"],
            clearing_id=row["clearing_id"],
            person_id=row["person_ref"],
            institution_code=row["institution_code"],
            doctor_code=row["doctor_code"],
            insured_region=row["insured_region"],
            treatment_region=row["treatment_region"],
            settled_at=row["settled_at"],
            detail=row["detail"],
            found_at=stored(row["found_at"]),
            state=WarningState(row["state"]),
            owner=row["owner"],
            changed_at=row["changed_at"],
            state_index=row["state_idx"],
            notes=[
                WarningNote(
                    at=stored(n["at"]),
                    by=n["by"],
                    action=n["action"],
                    from_state=n["from_state"],
                    to_state=n["to_state"],
                    owner=n["owner"],
                    note=_opened(cipher, n["note"], row["warning_id"]),
                )
                for n in notes
            ],
        )


def _opened(cipher: Any, blob: bytes | None, wid: str) -> str | None:
    """A note opened for the supervisor; one that does not open is reported by where it is."""
    if blob is None:
        return None
    table, column = store.NOTE_CELL
    try:
        return cipher.decrypt(
            bytes(blob), source=GATEWAY_KEY_SOURCE, table=table, column=column, row_key=wid
        )
    except DecryptionError as exc:
        log.warning("warning note does not open: %s", exc)
        return None


@strawberry.input(description="Which warnings to list; every field narrows the list.")
class WarningFilter:
    state: WarningState | None = None
    rule: str | None = None
    min_grade: int | None = None
    institution_code: str | None = None
    doctor_code: str | None = None
    owner: str | None = None
    region: str | None = strawberry.field(
        default=None, description="Insured or treatment place within yours."
    )


@strawberry.enum(description="Whose credit record.")
class CreditSubject(Enum):
    INSTITUTION = "INSTITUTION"
    DOCTOR = "DOCTOR"


@strawberry.type(description="A credit record (信用记录): confirmed violations of one subject.")
class CreditRecord:
    subject: str = strawberry.field(description="Institution or doctor code.")
    confirmed: int = strawberry.field(description="Warnings closed as RESOLVED (violations).")
    false_positives: int
    pending: int = strawberry.field(description="Warnings still OPEN or ACKNOWLEDGED.")
    points: int = strawberry.field(description="Sum of the confirmed violations' grades.")
    level: str = strawberry.field(description="A (good) to D, by points ([credit] levels).")


def _in_scope(row: dict[str, Any], prefix: str) -> bool:
    return not prefix or any(
        (row[c] or "").startswith(prefix) for c in ("insured_region", "treatment_region")
    )


def _not_found() -> GraphQLError:
    # The same answer for an unknown warning and one outside the caller's region.
    return GraphQLError("no warning of this id in your region", extensions={"code": NOT_FOUND})


async def _settled(ctx: Any) -> None:
    """Changes logged before this read are visible in it (the log derives them)."""
    recorder = ctx.services.extras.get("audit")
    if recorder is not None:
        await recorder.settled()


@strawberry.type
class WarningQuery:
    @strawberry.field(
        description="Fund-supervision warnings of your region, newest first (view warnings). "
        "first: at most 100 (default 20); after: a cursor from pageInfo.endCursor."
    )
    async def supervision_warnings(
        self,
        info: strawberry.Info,
        filter: WarningFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SupervisionWarning]:
        ctx = info.context
        f = filter or WarningFilter()
        prefix = scope(ctx, "supervisionWarnings", "warnings", f.region)
        limit = page_size(first)
        cursor = decode_cursor(after, (str, str))
        t = store.WARNINGS
        stmt = select(t).order_by(t.c.found_at.desc(), t.c.warning_id.desc()).limit(limit + 1)
        if prefix:
            stmt = stmt.where(
                t.c.insured_region.like(f"{prefix}%") | t.c.treatment_region.like(f"{prefix}%")
            )
        for column, value in (
            (t.c.state, f.state.value if f.state else None),
            (t.c.rule, f.rule),
            (t.c.institution_code, f.institution_code),
            (t.c.doctor_code, f.doctor_code),
            (t.c.owner, f.owner),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if f.min_grade is not None:
            stmt = stmt.where(t.c.grade >= f.min_grade)
        if cursor:
            at = datetime.fromisoformat(cursor[0])
            stmt = stmt.where(
                (t.c.found_at < at) | ((t.c.found_at == at) & (t.c.warning_id < cursor[1]))
            )
        engine = _engine(ctx)
        await _settled(ctx)
        async with engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(stmt)]
        notes = await store.changes_of(engine, [r["warning_id"] for r in rows])
        cipher = ctx.services.cipher
        return connection(
            [
                (
                    (r["found_at"].isoformat(), r["warning_id"]),
                    SupervisionWarning.of(r, notes[r["warning_id"]], cipher),
                )
                for r in rows
            ],
            limit,
            after,
        )

    @strawberry.field(
        description="Credit records (信用记录) per institution or doctor from the warnings of "
        "your region: confirmed violations weigh by grade (view credit). fromMonth and "
        "toMonth: YYYY-MM, both included, at most 36 months."
    )
    async def credit_records(
        self,
        info: strawberry.Info,
        subject: CreditSubject,
        from_month: str,
        to_month: str,
        region: str | None = None,
        first: int = 20,
    ) -> list[CreditRecord]:
        ctx = info.context
        prefix = scope(ctx, "creditRecords", "credit", region)
        span = months(from_month, to_month)
        if not 1 <= first <= 100:
            raise bad_input("first must be 1-100", [{"path": ["first"], "reason": "1-100"}])
        from schema.supervision.monitoring import _warnings_where

        t = store.WARNINGS
        column = t.c.institution_code if subject is CreditSubject.INSTITUTION else t.c.doctor_code
        stmt = select(column, t.c.state, t.c.grade).where(
            *_warnings_where(prefix, span[0], span[-1]), column.is_not(None)
        )
        async with _engine(ctx).connect() as conn:
            rows = (await conn.execute(stmt)).all()
        tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for code, state, grade in rows:
            entry = tally[code]
            if state == "RESOLVED":
                entry[0] += 1
                entry[3] += grade
            elif state == "FALSE_POSITIVE":
                entry[1] += 1
            else:
                entry[2] += 1
        levels = ctx.services.claims_rules.credit_levels
        out = [
            CreditRecord(
                subject=code,
                confirmed=c,
                false_positives=fp,
                pending=p,
                points=pts,
                level=max((low, lvl) for lvl, low in levels if pts >= low)[1],
            )
            for code, (c, fp, p, pts) in tally.items()
        ]
        out.sort(key=lambda r: (-r.points, -r.confirmed, r.subject))
        return out[:first]


@strawberry.input(description="One change of one warning.")
class HandleWarningInput:
    warning_id: strawberry.ID
    action: WarningAction
    note: str = strawberry.field(description="Why (1-2000 characters); kept with the change.")
    owner: str | None = strawberry.field(
        default=None, description="Who handles it from now (ASSIGN; optional otherwise)."
    )


@strawberry.type(description="The warning after handleWarning.")
class HandleWarningPayload:
    warning: SupervisionWarning
    replayed: bool = strawberry.field(
        description="True when this idempotencyKey was used before: the warning as it is "
        "now, and nothing changed by this call."
    )


async def _payload(ctx: Any, wid: str, replayed: bool) -> HandleWarningPayload:
    engine = _engine(ctx)
    row = await store.get(engine, wid)
    assert row is not None  # warnings are never deleted
    notes = await store.changes_of(engine, [wid])
    return HandleWarningPayload(
        warning=SupervisionWarning.of(row, notes[wid], ctx.services.cipher), replayed=replayed
    )


async def handle_warning(
    info: strawberry.Info,
    idempotency_key: Annotated[str, strawberry.argument(description=KEY_DESCRIPTION)],
    input: Annotated[HandleWarningInput, strawberry.argument(description="The change.")],
) -> HandleWarningPayload:
    ctx = info.context
    operation = "handleWarning"
    # Who may: role, purpose and region of the verified token ([[supervision]] view handle).
    prefix = scope(ctx, operation, "handle", None)
    p = Problems()
    call = IdempotentCall(ctx, operation, idempotency_key, p)
    wid = str(input.warning_id)
    asked = {"warning_id": wid, "action": input.action, "note": input.note, "owner": input.owner}
    if (earlier := await call.earlier(asked)) is not None:
        return await _payload(ctx, earlier.object_id, replayed=True)
    check_input(p, input.note, input.owner, input.action)
    p.raise_if_any(operation)
    async with one_at_a_time("warning", wid, _engine(ctx)):
        await _settled(ctx)
        row = await store.get(_engine(ctx), wid)
        if row is None or not _in_scope(row, prefix):
            raise _not_found()
        to_state = next_state(operation, row, input.action, input.owner)
        if (twin := await call.claim()) is not None:
            return await _payload(ctx, twin.object_id, replayed=True)
        await change(
            ctx,
            operation,
            target="warning",
            target_id=wid,
            row=row,
            action=input.action,
            to_state=to_state,
            owner=input.owner,
            note=input.note,
            note_cell=store.NOTE_CELL,
            holders=[h for h in [ctx.services.registry.holder(row["source"])] if h],
            purpose=str(ctx.purpose),
        )
    await call.done(Created(GATEWAY, wid))
    return await _payload(ctx, wid, replayed=False)
