"""``handleAlert`` and ``closeAlert``: a security officer handles an access alert.

Only an auditor (role ``auditor``, purpose AUDIT, from the verified token) may, and only an
alert in its audit scope (the scope of the event that fired it); an alert outside the scope
and one that does not exist get the same answer. Being an alert's owner grants nothing.
The state model is the one the supervision warnings share (:mod:`schema.mutations.handling`:
assign, acknowledge, resolve, false positive). Each change is an audit event (``ALERT``,
phase ``CHANGE``), and the alert's row is changed by the log's derive hook in that event's
transaction, so the state an auditor reads is the state the log proves (``medfed audit
verify``). The note is free text an officer may fill with personal detail: it is stored
only as a field ciphertext.

``closeAlert(alertId, note)`` is ``handleAlert`` with action RESOLVE, kept for the clients
that used it before the four states; it is idempotent by state (a closed alert cannot be
closed again, ``BAD_USER_INPUT``). ``handleAlert`` takes an idempotency key like every other
mutation.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy import select

from schema.errors import forbidden
from schema.mutations.handling import (
    WarningAction,
    change,
    check_input,
    next_state,
    one_at_a_time,
)
from schema.mutations.idempotent import Created, IdempotentCall
from schema.mutations.validation import Problems
from schema.types.audit import AuditAlertNode, auditor_scope, recorder_of
from security.audit.alert_state import ALERTS
from security.audit.events import note_audit_read
from security.audit.index import INDEX, scope_clauses
from security.policy.break_glass import NOTE_CELL

GATEWAY = "gateway"
KEY_DESCRIPTION = (
    "Client-chosen key (1-64 of A-Z a-z 0-9 _ -): the same key with the same input acts once "
    "(the answer says replayed)."
)


@strawberry.type(description="The alert after closeAlert.")
class CloseAlertPayload:
    alert: AuditAlertNode


@strawberry.input(description="One change of one access alert.")
class HandleAlertInput:
    alert_id: int = strawberry.field(description="The alert's id.")
    action: WarningAction
    note: str = strawberry.field(description="Why (1-2000 characters); kept encrypted.")
    owner: str | None = strawberry.field(
        default=None, description="Who handles it from now (ASSIGN; optional otherwise)."
    )


@strawberry.type(description="The alert after handleAlert.")
class HandleAlertPayload:
    alert: AuditAlertNode
    replayed: bool = strawberry.field(
        description="True when this idempotencyKey was used before: the alert as it is now, "
        "and nothing changed by this call."
    )


async def _in_scope(ctx: Any, operation: str, alert_id: int) -> tuple[Any, list[str]]:
    """The alert's row and the parties of the event that fired it, or the one refusal."""
    scope = auditor_scope(ctx, operation)
    recorder = recorder_of(ctx)
    await recorder.settled()
    nowhere = forbidden(f"{operation}: no alert {alert_id} in your audit scope")
    async with recorder.engine.connect() as conn:
        row = (await conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id))).mappings().first()
        if row is None:
            raise nowhere
        fired = select(INDEX.c.party_orgs).where(INDEX.c.idx == row["idx"], *scope_clauses(scope))
        parties = (await conn.execute(fired.limit(1))).scalar()
    if parties is None:
        raise nowhere
    return row, [p for p in parties.split(",") if p]


async def _node(ctx: Any, alert_id: int) -> AuditAlertNode:
    recorder = recorder_of(ctx)
    async with recorder.engine.connect() as conn:
        after = (await conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id))).mappings().one()
    return AuditAlertNode.of(after, ctx.services.cipher)


async def _apply(
    ctx: Any,
    operation: str,
    row: Any,
    parties: list[str],
    action: WarningAction,
    path: tuple[str, ...] = ("input", "action"),
    **rest: Any,
) -> None:
    to_state = next_state(operation, row, action, rest["owner"], path)
    await change(
        ctx,
        operation,
        target="alert",
        target_id=row["id"],
        row=row,
        action=action,
        to_state=to_state,
        note_cell=NOTE_CELL,
        holders=parties,
        purpose="AUDIT",
        **rest,
    )


async def handle_alert(
    info: strawberry.Info,
    idempotency_key: Annotated[str, strawberry.argument(description=KEY_DESCRIPTION)],
    input: Annotated[HandleAlertInput, strawberry.argument(description="The change.")],
) -> HandleAlertPayload:
    ctx = info.context
    operation = "handleAlert"
    note_audit_read(ctx, f"Mutation.{operation}")
    auditor_scope(ctx, operation)
    p = Problems()
    call = IdempotentCall(ctx, operation, idempotency_key, p)
    asked = {
        "alert_id": input.alert_id,
        "action": input.action,
        "note": input.note,
        "owner": input.owner,
    }
    if (earlier := await call.earlier(asked)) is not None:
        return HandleAlertPayload(alert=await _node(ctx, int(earlier.object_id)), replayed=True)
    check_input(p, input.note, input.owner, input.action)
    p.raise_if_any(operation)
    async with one_at_a_time("alert", input.alert_id, recorder_of(ctx).engine):
        row, parties = await _in_scope(ctx, operation, input.alert_id)
        if (twin := await call.claim()) is not None:
            return HandleAlertPayload(alert=await _node(ctx, int(twin.object_id)), replayed=True)
        await _apply(ctx, operation, row, parties, input.action, owner=input.owner, note=input.note)
    await call.done(Created(GATEWAY, str(input.alert_id)))
    return HandleAlertPayload(alert=await _node(ctx, input.alert_id), replayed=False)


async def close_alert(
    info: strawberry.Info,
    alert_id: Annotated[int, strawberry.argument(description="The alert's id.")],
    note: Annotated[str, strawberry.argument(description="Why it is closed (1-2000).")],
) -> CloseAlertPayload:
    ctx = info.context
    operation = "closeAlert"
    note_audit_read(ctx, f"Mutation.{operation}")
    auditor_scope(ctx, operation)
    p = Problems()
    check_input(p, note, None, WarningAction.RESOLVE)
    if p.items:  # the old argument paths: the note is an argument, not a field of an input
        p.items = [{**item, "path": item["path"][1:]} for item in p.items]
    p.raise_if_any(operation)
    async with one_at_a_time("alert", alert_id, recorder_of(ctx).engine):
        row, parties = await _in_scope(ctx, operation, alert_id)
        resolve = WarningAction.RESOLVE
        await _apply(ctx, operation, row, parties, resolve, ("alertId",), owner=None, note=note)
    return CloseAlertPayload(alert=await _node(ctx, alert_id))
