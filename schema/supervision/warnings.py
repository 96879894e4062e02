"""Risk warnings with graded handling (风险预警分级处置): supervisors list and filter the
warnings of their region, assign them, acknowledge them and close them as RESOLVED (a
confirmed violation) or FALSE_POSITIVE, each change with a note; confirmed violations build
a credit record per institution and per doctor. Who may do what, in which region, is the
policy file's ``[[supervision]]`` (views ``warnings``, ``handle``, ``credit``); every read and
every change is audited (the change's warning, action and states go into the request's audit
event, so ``medfed audit verify`` covers them)."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import select

from schema.errors import NOT_FOUND, bad_input
from schema.pagination import Connection, connection, decode_cursor, page_size
from schema.supervision.monitoring import _engine, months, scope
from security import warnings as store

OWNER = re.compile(r"^[A-Za-z0-9._@:|-]{1,128}$")
MAX_NOTE = 2000


@strawberry.enum(
    description="Where a warning stands (OPEN → ACKNOWLEDGED → RESOLVED | FALSE_POSITIVE)."
)
class WarningState(Enum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"
    FALSE_POSITIVE = "FALSE_POSITIVE"


@strawberry.enum(description="What a supervisor does to a warning.")
class WarningAction(Enum):
    ASSIGN = "ASSIGN"
    ACKNOWLEDGE = "ACKNOWLEDGE"
    RESOLVE = "RESOLVE"
    FALSE_POSITIVE = "FALSE_POSITIVE"


TARGET = {
    WarningAction.ASSIGN: None,
    WarningAction.ACKNOWLEDGE: "ACKNOWLEDGED",
    WarningAction.RESOLVE: "RESOLVED",
    WarningAction.FALSE_POSITIVE: "FALSE_POSITIVE",
}


@strawberry.type(description="One change of a warning, with its note.")
class WarningNote:
    at: datetime
    by: str = strawberry.field(description="The supervisor: issuer|subject|organisation.")
    action: str
    from_state: str
    to_state: str
    owner: str | None
    note: str


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
    notes: list[WarningNote]

    @classmethod
    def of(cls, row: dict[str, Any], notes: list[dict[str, Any]]) -> SupervisionWarning:
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
            found_at=row["found_at"],
            state=WarningState(row["state"]),
            owner=row["owner"],
            notes=[
                WarningNote(
                    at=n["at"],
                    by=n["by"],
                    action=n["action"],
                    from_state=n["from_state"],
                    to_state=n["to_state"],
                    owner=n["owner"],
                    note=n["note"],
                )
                for n in notes
            ],
        )


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


def _by(ctx: Any) -> str:
    p = ctx.principal
    return f"{p.issuer}|{p.sub}|{p.org}"


def _note_change(ctx: Any, change: dict[str, Any]) -> None:
    changes = getattr(ctx, "supervision_changes", None)
    if changes is None:
        changes = []
        ctx.supervision_changes = changes
    changes.append(change)


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
        async with engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(stmt)]
        notes = await store.notes_of(engine, [r["warning_id"] for r in rows])
        return connection(
            [
                (
                    (r["found_at"].isoformat(), r["warning_id"]),
                    SupervisionWarning.of(r, notes[r["warning_id"]]),
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


async def handle_warning(
    info: strawberry.Info,
    input: Annotated[HandleWarningInput, strawberry.argument(description="The change.")],
) -> SupervisionWarning:
    ctx = info.context
    prefix = scope(ctx, "handleWarning", "handle", None)
    problems = []
    if not 1 <= len(input.note.strip()) <= MAX_NOTE:
        problems.append({"path": ["input", "note"], "reason": f"must be 1-{MAX_NOTE} characters"})
    if input.owner is not None and not OWNER.match(input.owner):
        problems.append(
            {"path": ["input", "owner"], "reason": "must be 1-128 of A-Z a-z 0-9 . _ @ : | -"}
        )
    if input.action is WarningAction.ASSIGN and input.owner is None:
        problems.append({"path": ["input", "owner"], "reason": "ASSIGN needs an owner"})
    if problems:
        raise bad_input("handleWarning: the input has problems", problems)
    engine = _engine(ctx)
    wid = str(input.warning_id)
    row = await store.get(engine, wid)
    if row is None or not _in_scope(row, prefix):
        raise _not_found()
    try:
        changed = await store.change(
            engine,
            wid,
            by=_by(ctx),
            action=input.action.value,
            to_state=TARGET[input.action],
            owner=input.owner,
            note=input.note.strip(),
        )
    except store.TransitionError as exc:
        raise bad_input(
            f"handleWarning: {exc}", [{"path": ["input", "action"], "reason": str(exc)}]
        ) from None
    _note_change(
        ctx,
        {
            "warningId": wid,
            "rule": row["rule"],
            "action": input.action.value,
            "from": row["state"],
            "to": changed["state"],
            "owner": changed["owner"],
            # the note is kept with the warning; the log proves it by its digest
            "noteSha256": hashlib.sha256(input.note.strip().encode()).hexdigest(),
        },
    )
    notes = await store.notes_of(engine, [wid])
    return SupervisionWarning.of(changed, notes[wid])
