"""``closeAlert``: a security officer closes an alert with a note.

Only an auditor (role ``auditor``, purpose AUDIT) may, and only an alert in its audit scope
(the scope of the event that fired it); an alert outside the scope and one that does not
exist get the same answer. The change is an audit event (``ALERT``, phase ``CHANGE``), and
the alert's row is changed by the log's derive hook in that event's transaction, so the
state an auditor reads is the state the log proves (``medfed audit verify``). The note is
free text an officer may fill with personal detail: it is stored only as a field ciphertext.

Closing is idempotent by state: a CLOSED alert cannot be closed again (``BAD_USER_INPUT``),
and it shows who closed it, when, and with which note.
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from sqlalchemy import select

from schema.errors import bad_input, forbidden
from schema.mutations.idempotent import AuditUnavailableForWrite
from schema.types.audit import AuditAlertNode, auditor_scope, recorder_of
from security.audit import AuditWriteError
from security.audit.alert_state import ALERTS, CLOSED, TRANSITIONS, change_event
from security.audit.events import note_audit_read
from security.audit.index import INDEX, scope_clauses
from security.policy.break_glass import GATEWAY_KEY_SOURCE, NOTE_CELL

MAX_NOTE = 2000  # characters


@strawberry.type(description="The alert after closeAlert.")
class CloseAlertPayload:
    alert: AuditAlertNode


async def close_alert(
    info: strawberry.Info,
    alert_id: Annotated[int, strawberry.argument(description="The alert's id.")],
    note: Annotated[str, strawberry.argument(description=f"Why it is closed (1-{MAX_NOTE}).")],
) -> CloseAlertPayload:
    ctx = info.context
    note_audit_read(ctx, "Mutation.closeAlert")
    scope = auditor_scope(ctx, "closeAlert")
    if not note.strip() or len(note) > MAX_NOTE:
        raise bad_input(
            "closeAlert: the note is required",
            [{"path": ["note"], "reason": f"must hold 1-{MAX_NOTE} characters"}],
        )
    recorder = recorder_of(ctx)
    await recorder.settled()
    nowhere = forbidden(f"closeAlert: no alert {alert_id} in your audit scope")
    async with recorder.engine.connect() as conn:
        row = (await conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id))).mappings().first()
        if row is None:
            raise nowhere
        fired = select(INDEX.c.party_orgs).where(INDEX.c.idx == row["idx"], *scope_clauses(scope))
        parties = (await conn.execute(fired.limit(1))).scalar()
    if parties is None:
        raise nowhere
    if CLOSED not in TRANSITIONS.get(row["state"], frozenset()):
        raise bad_input(
            f"closeAlert: alert {alert_id} is {row['state']}; it cannot be closed",
            [{"path": ["alertId"], "reason": f"the alert is {row['state']}"}],
        )
    table, column = NOTE_CELL
    sealed = ctx.services.cipher.encrypt(
        note.strip(), source=GATEWAY_KEY_SOURCE, table=table, column=column, row_key=str(alert_id)
    )
    event = change_event(
        alert_id=alert_id,
        state=CLOSED,
        principal=ctx.principal,
        note=sealed,
        holders=[p for p in parties.split(",") if p],
        request_id=ctx.request_id,
    )
    try:
        await recorder.record(event)
    except AuditWriteError:
        ctx.audit_unavailable = True  # the request answers 503
        raise AuditUnavailableForWrite("closeAlert") from None
    async with recorder.engine.connect() as conn:
        after = (await conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id))).mappings().one()
    return CloseAlertPayload(alert=AuditAlertNode.of(after, ctx.services.cipher))
