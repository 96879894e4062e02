"""Graded handling shared by the access alerts and the supervision warnings.

One state model (:mod:`security.audit.alert_state`), one set of GraphQL states and actions,
one way to change a row: :func:`change` checks the action against the model, seals the note
and logs the ``ALERT`` change event; the log's derive hook changes the row in that event's
transaction, so the state read afterwards is the state ``medfed audit verify`` proves. Who
may change what is decided by the caller of :func:`change` from the verified token's role,
purpose and organisation (as the issuer asserted them) and the row's own region or audit
scope; never from anything the caller wrote, such as a row's owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from schema.errors import bad_input
from schema.mutations.idempotent import AuditUnavailableForWrite
from schema.mutations.validation import Problems
from schema.types.handling import WarningAction, WarningState
from security import row_lock
from security.audit import AuditWriteError
from security.audit import alert_state as model
from security.policy.break_glass import GATEWAY_KEY_SOURCE

__all__ = [
    "WarningAction",
    "WarningState",
    "change",
    "check_input",
    "next_state",
    "one_at_a_time",
]
MAX_NOTE = 2000  # characters


# One change of a row at a time: the state a handler checked is the state its event changes.
# Within a process by an asyncio lock (per database: the tasks wait here, not on a database
# connection each), across the gateway's workers by the database's own (security.row_lock).
_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@contextlib.asynccontextmanager
async def one_at_a_time(
    target: str, target_id: int | str, engine: AsyncEngine | None
) -> AsyncIterator[None]:
    """Hold the row from reading its state to logging its change, in every worker."""
    name = f"{target}:{target_id}"
    key = f"{id(engine)}:{name}"
    lock = _LOCKS.get(key)
    if lock is None:
        lock = _LOCKS[key] = asyncio.Lock()
    async with lock:
        if engine is None:
            yield
        else:
            async with row_lock.held(engine, name):
                yield


def check_input(p: Problems, note: str, owner: str | None, action: WarningAction) -> None:
    """The problems of a change's input, at the paths of ``input``."""
    if not 1 <= len(note.strip()) <= MAX_NOTE:
        p.add(["input", "note"], f"must be 1-{MAX_NOTE} characters")
    if owner is not None and (why := model.owner_problem(owner)) is not None:
        p.add(["input", "owner"], why)
    if action is WarningAction.ASSIGN and owner is None:
        p.add(["input", "owner"], "ASSIGN needs an owner")


def next_state(
    operation: str,
    row: Any,
    action: WarningAction,
    owner: str | None,
    path: tuple[str, ...] = ("input", "action"),
) -> str:
    """The state ``action`` leads ``row`` to, or BAD_USER_INPUT (at ``path``) saying why not."""
    try:
        return model.next_state(row["state"], action.value, row["owner"], owner)
    except model.TransitionError as exc:
        raise bad_input(f"{operation}: {exc}", [{"path": list(path), "reason": str(exc)}]) from None


async def change(
    ctx: Any,
    operation: str,
    *,
    target: str,
    target_id: int | str,
    row: Any,
    action: WarningAction,
    to_state: str,
    owner: str | None,
    note: str,
    note_cell: tuple[str, str],
    holders: list[str],
    purpose: str,
) -> int:
    """Log the change (the row changes with it); its log index. The note is sealed under
    the gateway's key, bound to the row, before it is logged."""
    recorder = ctx.services.extras.get("audit")
    if recorder is None:
        # No log, no change: a state nobody could prove is not a state.
        raise AuditUnavailableForWrite(operation)
    table, column = note_cell
    sealed = ctx.services.cipher.encrypt(
        note.strip(), source=GATEWAY_KEY_SOURCE, table=table, column=column, row_key=str(target_id)
    )
    event = model.change_event(
        target=target,
        target_id=target_id,
        action=action.value,
        from_state=row["state"],
        state=to_state,
        owner=owner if owner is not None else row["owner"],
        principal=ctx.principal,
        purpose=purpose,
        note=sealed,
        holders=holders,
        request_id=ctx.request_id,
    )
    try:
        return await recorder.record(event)
    except AuditWriteError:
        ctx.audit_unavailable = True  # the request answers 503
        raise AuditUnavailableForWrite(operation) from None
